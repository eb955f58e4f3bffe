//! The perf-buffer fallback of ring buffers (`EBPF_PACK_EVENTS` in `probes/include/ebpf_pack.h`): on a
//! kernel that cannot create a `BPF_MAP_TYPE_RINGBUF` (before 5.8), or with `--perf-buffer`, each ring
//! buffer that declares a fallback is switched to its perf-buffer definition in the object's BTF, and its
//! `.rodata` switch is set, before aya loads the object. A ring buffer without a fallback on such a
//! kernel is refused by name before anything is loaded.

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection};

use crate::btf::{PERF_SWITCH_PREFIX, retype_var};
use crate::failure::{Exit, Failure};
use crate::globals::{self, Setting};
use crate::map_types::{PERF_EVENT_ARRAY, RINGBUF};
use crate::probe::ProbeObject;
use crate::sys;

/// Whether this kernel can create a ring buffer (a real one-page map, closed again).
pub fn kernel_has_ringbuf() -> bool {
    sys::probe_map_type(RINGBUF, 0, 0, sys::page_size()).is_ok()
}

/// Switches the ring buffers of `probes` to their perf fallbacks when `use_perf` (the kernel has no
/// ring buffer, or `--perf-buffer`); `forced` tells the two apart for the refusal of ring buffers that
/// have no fallback. Returns the names of the switched maps, `probe/map`.
pub fn apply(
    probes: &mut [ProbeObject],
    use_perf: bool,
    forced: bool,
) -> Result<Vec<String>, Failure> {
    let mut switched = Vec::new();
    if !use_perf {
        return Ok(switched);
    }
    for probe in probes.iter_mut() {
        let rings: Vec<String> = probe
            .maps
            .iter()
            .filter(|m| m.map_type == Some(RINGBUF))
            .map(|m| m.name.clone())
            .collect();
        for map in rings {
            let fallback = probe.btf.as_ref().and_then(|b| {
                let f = b.perf_fallback(&map)?;
                let switch = globals::rodata_var(b, &format!("{PERF_SWITCH_PREFIX}{map}"))?;
                (b.size_of(switch.ty) == Some(1)).then_some((f, switch))
            });
            let Some((fallback, switch)) = fallback else {
                if forced {
                    continue;
                }
                return Err(Failure::new(
                    Exit::Load,
                    format!(
                        "probe {}: ring buffer `{map}` needs kernel 5.8+ (BPF_MAP_TYPE_RINGBUF), which \
                         this kernel cannot create, and the probe has no perf-buffer fallback",
                        probe.name
                    ),
                )
                .hint(
                    "declare it with EBPF_PACK_EVENTS(map, type, bytes) and write records with \
                     EP_EVENT_RESERVE/EP_EVENT_SUBMIT (probes/include/ebpf_pack.h), or run a 5.8+ kernel",
                ));
            };
            let btf_range = ElfFile64::<Endianness>::parse(&*probe.data)
                .ok()
                .and_then(|elf| elf.section_by_name(".BTF")?.file_range())
                .and_then(|(start, size)| {
                    Some(usize::try_from(start).ok()?..usize::try_from(start + size).ok()?)
                });
            let patched = btf_range
                .and_then(|r| probe.data.get_mut(r))
                .map(|blob| retype_var(blob, fallback.map_var, fallback.perf_def));
            if !matches!(patched, Some(Ok(()))) {
                return Err(Failure::new(
                    Exit::BadInput,
                    format!(
                        "probe {}: cannot switch ring buffer `{map}` to its perf fallback: the object's \
                         .BTF section is unreadable",
                        probe.name
                    ),
                ));
            }
            let on = Setting {
                bytes: vec![1],
                global: switch,
            };
            globals::apply(probe, &[on])?;
            if let Some(decl) = probe.maps.iter_mut().find(|m| m.name == map) {
                decl.map_type = Some(PERF_EVENT_ARRAY);
                decl.max_entries = Some(0);
            }
            switched.push(format!("{}/{map}", probe.name));
        }
    }
    Ok(switched)
}
