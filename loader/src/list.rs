//! `--list`: what each probe contains, read from the object alone (no kernel, no privilege needed).

use crate::args::AttachOptions;
use crate::attach::plan_program;
use crate::btf::{HEAP_MAP_PREFIX, LOST_MAP_PREFIX};
use crate::probe::ProbeObject;
use crate::{globals, map_types};

/// Appends the listing of one probe: a header line, one line per program, one per map.
pub fn describe(probe: &ProbeObject, opts: &AttachOptions, out: &mut String) {
    out.push_str(&probe.name);
    out.push_str("  ");
    out.push_str(&probe.path.to_string_lossy());
    out.push_str(if probe.core {
        "  (CO-RE: needs kernel BTF)\n"
    } else {
        "  (no CO-RE relocations)\n"
    });
    if let Some(problem) = &probe.btf_problem {
        out.push_str("  warning: unreadable .BTF (");
        out.push_str(problem);
        out.push_str("): events and maps print as hex\n");
    }
    for p in &probe.programs {
        out.push_str("  program ");
        out.push_str(&p.function);
        out.push_str("  ");
        out.push_str(&p.section);
        out.push_str("  -> ");
        match plan_program(&probe.name, p, opts) {
            Ok(point) => out.push_str(&point.describe()),
            Err(f) => match &p.attach {
                Some((kind, _)) => {
                    // The reason is the failure's last clause: `needs --iface IFACE`.
                    out.push_str(kind.as_str());
                    out.push_str(" (");
                    out.push_str(f.message.rsplit(": ").next().unwrap_or_default());
                    out.push(')');
                }
                None => out.push_str("unknown section kind"),
            },
        }
        out.push('\n');
    }
    if let Some(btf) = &probe.btf {
        for g in globals::settable(btf) {
            out.push_str("  setting ");
            out.push_str(&g.name);
            out.push_str("  ");
            out.push_str(&globals::type_name(btf, g.ty));
            out.push_str("  (--set ");
            out.push_str(&g.name);
            out.push_str("=VALUE)\n");
        }
    }
    for m in &probe.maps {
        out.push_str("  map ");
        out.push_str(&m.name);
        out.push_str("  ");
        out.push_str(m.map_type.map_or("unknown", map_types::name));
        if let Some(btf) = &probe.btf {
            let typed = |out: &mut String, label: &str, ty: Option<u32>| {
                if let Some(t) = ty {
                    out.push_str(label);
                    out.push_str(&btf.type_name(t));
                }
            };
            typed(out, "  key: ", m.key);
            typed(out, "  value: ", m.value);
            if m.map_type == Some(map_types::RINGBUF) {
                match btf.event_record_type(&m.name) {
                    Some(t) => typed(out, "  record: ", Some(btf.strip_qualifiers(t))),
                    None => out.push_str("  record: undeclared (printed as hex)"),
                }
            }
        }
        if let Some(ring) = m.name.strip_prefix(LOST_MAP_PREFIX) {
            out.push_str("  (lost-record counter of ring buffer ");
            out.push_str(ring);
            out.push_str(": reported, not dumped)");
        }
        if let Some(ring) = m.name.strip_prefix(HEAP_MAP_PREFIX) {
            out.push_str("  (record slot of the perf-buffer fallback of ");
            out.push_str(ring);
            out.push(')');
        }
        if btf_has_fallback(probe, &m.name) {
            out.push_str("  (perf-buffer fallback on kernels before 5.8)");
        }
        if m.pinning != 0 {
            out.push_str("  (pinning requested; ebpf-run unpins on load)");
        }
        out.push('\n');
    }
}

/// Whether ring buffer `map` of `probe` declares a perf-buffer fallback.
fn btf_has_fallback(probe: &ProbeObject, map: &str) -> bool {
    probe
        .btf
        .as_ref()
        .is_some_and(|b| b.perf_fallback(map).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{MapDecl, ProgramSpec};
    use ebpf_pack_manifest::AttachKind;

    #[test]
    fn listing_names_programs_attach_points_and_maps() {
        let spec = |f: &str, s: &str| ProgramSpec {
            function: f.into(),
            section: s.into(),
            attach: AttachKind::from_section(s),
        };
        let probe = ProbeObject {
            name: "opensnoop".into(),
            path: "bpf/opensnoop.bpf.o".into(),
            data: Vec::new(),
            programs: vec![
                spec("on_open", "tracepoint/syscalls/sys_enter_openat"),
                spec("on_xdp", "xdp"),
                spec("odd", "lsm/file_open"),
            ],
            maps: vec![MapDecl {
                name: "counts".into(),
                map_type: Some(map_types::HASH),
                key: None,
                value: None,
                pinning: 0,
                max_entries: Some(1024),
            }],
            btf: None,
            btf_problem: None,
            core: true,
        };
        let mut out = String::new();
        describe(&probe, &AttachOptions::default(), &mut out);
        assert_eq!(
            out,
            "opensnoop  bpf/opensnoop.bpf.o  (CO-RE: needs kernel BTF)\n\
             \x20 program on_open  tracepoint/syscalls/sys_enter_openat  -> tracepoint syscalls/sys_enter_openat\n\
             \x20 program on_xdp  xdp  -> xdp (needs --iface IFACE)\n\
             \x20 program odd  lsm/file_open  -> unknown section kind\n\
             \x20 map counts  hash\n"
        );
    }
}
