//! `--list`: what the bundle is for, from its `manifest.json`, and what each probe contains, read from
//! the object itself (no kernel, no privilege needed), checked against the manifest's entry.

use ebpf_pack_manifest::json::Json;

use crate::args::AttachOptions;
use crate::attach::plan_program;
use crate::btf::{HEAP_MAP_PREFIX, LOST_MAP_PREFIX};
use crate::probe::ProbeObject;
use crate::{globals, map_types};

/// Appends the bundle's header from its manifest: project, target facts, kernel, BTF source, tools.
/// `Err` names the first member a usable manifest must have.
pub fn describe_bundle(manifest: &Json, out: &mut String) -> Result<(), String> {
    let text = |key: &'static str| {
        manifest
            .str_at(key)
            .ok_or_else(|| format!("no string `{key}`"))
    };
    let fact = |key: &'static str| {
        manifest
            .get("target")
            .and_then(|t| t.str_at(key))
            .ok_or_else(|| format!("no string `target.{key}`"))
    };
    let (project, version) = (text("project")?, text("version")?);
    let bits = manifest
        .get("target")
        .and_then(|t| t.get("bits")?.as_u64())
        .ok_or("no number `target.bits`")?;
    let btf = match fact("btf")? {
        "kernel" => "the running kernel's (/sys/kernel/btf/vmlinux)".to_owned(),
        "bundled" => format!(
            "the bundle's {}",
            manifest.str_at("btf").unwrap_or("btf/vmlinux.btf")
        ),
        "none" => "none (no CO-RE)".to_owned(),
        other => return Err(format!("unknown `target.btf` value `{other}`")),
    };
    for part in [
        "bundle ",
        project,
        " ",
        version,
        " for ",
        fact("name")?,
        ": arch ",
        fact("arch")?,
    ] {
        out.push_str(part);
    }
    out.push_str(", ");
    crate::decode::push_decimal(out, bits);
    for part in [
        "-bit ",
        fact("endian")?,
        "-endian, loader ",
        fact("triple")?,
        "\n  kernel ",
        fact("kernel_version")?,
        " or newer; BTF: ",
        &btf,
        "\n",
    ] {
        out.push_str(part);
    }
    if let Some(Json::Object(tools)) = manifest.get("tools") {
        let mut first = true;
        for (tool, version) in tools {
            out.push_str(if first { "  built with " } else { "; " });
            first = false;
            out.push_str(tool);
            out.push_str(": ");
            out.push_str(version.as_str().unwrap_or("?"));
        }
        if !first {
            out.push('\n');
        }
    }
    Ok(())
}

/// The manifest's entry for `probe` (matched by object path relative to the bundle), if any.
pub fn manifest_entry<'m>(manifest: &'m Json, object: &str) -> Option<&'m Json> {
    manifest
        .get("probes")?
        .as_array()?
        .iter()
        .find(|p| p.str_at("object") == Some(object))
}

/// Where the manifest's entry and the object disagree on programs (name, section) or maps (name,
/// type), compared as sets: `None` when they agree. A difference means the bundle changed after it
/// was built.
pub fn manifest_mismatch(entry: &Json, probe: &ProbeObject) -> Option<String> {
    let listed = |key: &str, a: &str, b: &str| -> Vec<(String, String)> {
        entry
            .get(key)
            .and_then(Json::as_array)
            .unwrap_or_default()
            .iter()
            .map(|i| {
                let field = |k| i.str_at(k).unwrap_or_default().to_owned();
                (field(a), field(b))
            })
            .collect()
    };
    let programs: Vec<(String, String)> = probe
        .programs
        .iter()
        .map(|p| (p.function.clone(), p.section.clone()))
        .collect();
    let maps: Vec<(String, String)> = probe
        .maps
        .iter()
        .map(|m| {
            let ty = m.map_type.map_or("unknown", map_types::name);
            (m.name.clone(), ty.to_owned())
        })
        .collect();
    for (what, manifest, object) in [
        ("program", listed("programs", "name", "section"), programs),
        ("map", listed("maps", "name", "type"), maps),
    ] {
        if let Some((name, detail)) = manifest.iter().find(|m| !object.contains(m)) {
            return Some(format!(
                "manifest.json lists {what} {name} ({detail}), the object has no such {what}"
            ));
        }
        if let Some((name, detail)) = object.iter().find(|o| !manifest.contains(o)) {
            return Some(format!(
                "the object has {what} {name} ({detail}), manifest.json does not list it"
            ));
        }
    }
    None
}

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
        let options = crate::options::tool_options(btf);
        for g in globals::settable(btf) {
            out.push_str("  setting ");
            out.push_str(&g.name);
            out.push_str("  ");
            out.push_str(&globals::type_name(btf, g.ty));
            out.push_str("  (--set ");
            out.push_str(&g.name);
            out.push_str("=VALUE");
            if let Some(o) = options.iter().find(|o| o.global == g.name) {
                out.push_str(", or ");
                out.push_str(&probe.name);
                out.push(' ');
                out.push_str(&o.flag);
                if let Some(v) = &o.value {
                    out.push(' ');
                    out.push_str(v);
                }
                out.push_str(": ");
                out.push_str(&o.help);
            }
            out.push_str(")\n");
        }
    }
    // `.kconfig` externs: filled from the running kernel when the probe runs.
    let externs = match probe.btf {
        Some(_) => crate::kconfig_values::kconfig_externs(&probe.data),
        None => Ok(Vec::new()),
    };
    if let Ok(externs) = &externs
        && !externs.is_empty()
    {
        out.push_str("  kconfig");
        for e in externs {
            out.push(' ');
            out.push_str(&e.name);
            if e.weak {
                out.push_str(" (weak)");
            }
        }
        out.push('\n');
    } else if let Err(e) = externs {
        out.push_str("  kconfig: ");
        out.push_str(&e);
        out.push('\n');
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
                value_size: None,
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
