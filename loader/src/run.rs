//! The two top-level flows: `--list`, and a run (validate → load → attach → print events → dump maps →
//! detach). Everything is validated before the first byte reaches the kernel.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use aya::{Btf, Ebpf, Endianness};
use ebpf_pack_manifest::MANIFEST_FILE;
use ebpf_pack_manifest::json::Json;

use crate::args::{Format, Options};
use crate::attach::{self, KernelBtf, PlannedProgram};
use crate::bundle::{self, BtfSource, Bundle, KERNEL_BTF};
use crate::failure::{Exit, Failure, chain};
use crate::probe::ProbeObject;
use crate::tool_args::{self, ToolArgs};
use crate::{btf, dump, events, fallback, globals, kconfig, list, map_types, options, sys};

/// Reads and parses one object file (from the bundle when it lies in it).
fn read_probe(bundle: &Bundle, name: String, path: &Path) -> Result<ProbeObject, Failure> {
    let data = bundle.read(path).map_err(|e| {
        Failure::new(
            Exit::BadInput,
            format!("probe {name}: cannot read {}: {e}", path.display()),
        )
    })?;
    ProbeObject::parse(name, path.to_path_buf(), data).map_err(|e| Failure::new(Exit::BadInput, e))
}

/// Reads the selected probes (every probe of the bundle when none is named), telling probes from
/// their tool options (tool_args) as each object is read.
fn read_probes(opts: &Options) -> Result<(Vec<ProbeObject>, Bundle, ToolArgs), Failure> {
    let bundle = Bundle::open(opts.bundle.as_deref())?;
    let available = bundle.available_probes();
    let mut probes: Vec<ProbeObject> = Vec::new();
    let (targets, tool) = tool_args::split(&opts.words, |t| {
        let Some((name, path)) = bundle::select(std::slice::from_ref(t), &bundle.root, &available)?
            .into_iter()
            .next()
        else {
            return Ok(Vec::new());
        };
        let probe = read_probe(&bundle, name, &path)?;
        let options = probe
            .btf
            .as_ref()
            .map(options::tool_options)
            .unwrap_or_default();
        probes.push(probe);
        Ok::<_, Failure>(options)
    })?;
    if targets.is_empty() {
        for (name, path) in bundle::select(&[], &bundle.root, &available)? {
            probes.push(read_probe(&bundle, name, &path)?);
        }
    }
    // A probe named twice is loaded once, with the settings of both mentions.
    let mut tool = tool;
    let mut unique: Vec<ProbeObject> = Vec::with_capacity(probes.len());
    let mut sets: Vec<Vec<(String, String)>> = Vec::with_capacity(probes.len());
    for (i, p) in probes.into_iter().enumerate() {
        let mine = tool.sets.get(i).cloned().unwrap_or_default();
        match unique.iter().position(|u| u.path == p.path) {
            Some(at) => {
                if let Some(set) = sets.get_mut(at) {
                    set.extend(mine);
                }
                if tool.help == Some(i) {
                    tool.help = Some(at);
                }
            }
            None => {
                if tool.help == Some(i) {
                    tool.help = Some(unique.len());
                }
                unique.push(p);
                sets.push(mine);
            }
        }
    }
    tool.sets = sets;
    Ok((unique, bundle, tool))
}

/// A probe's object path relative to the bundle, when it is one of the bundle's.
fn in_bundle(bundle: &Bundle, p: &ProbeObject) -> Option<String> {
    let rel = p.path.strip_prefix(&bundle.root).ok()?;
    rel.to_str().map(str::to_owned)
}

/// The bundle's `manifest.json`, parsed, when one of `probes` is the bundle's and the manifest can be
/// read: `Err` says why it is not JSON.
fn bundle_manifest(bundle: &Bundle, probes: &[ProbeObject]) -> Option<Result<Json, String>> {
    if !probes.iter().any(|p| in_bundle(bundle, p).is_some()) {
        return None;
    }
    let data = bundle.read(&bundle.root.join(MANIFEST_FILE)).ok()?;
    Some(Json::parse(&data).map_err(|e| e.to_string()))
}

/// The manifest of a bundle folder a probe of the run comes from, which must be JSON; `None` for an
/// embedded bundle (checked against its SHA256SUMS when opened) and for loose objects.
fn checked_manifest(bundle: &Bundle, probes: &[ProbeObject]) -> Result<Option<Json>, Failure> {
    if bundle.is_embedded() {
        return Ok(None);
    }
    match bundle_manifest(bundle, probes) {
        None => Ok(None),
        Some(Ok(json)) => Ok(Some(json)),
        Some(Err(e)) => Err(Failure::new(
            Exit::BadInput,
            format!("{}: {e}", bundle.root.join(MANIFEST_FILE).display()),
        )
        .hint("the bundle is damaged: unpack it again, or rebuild it with ebpf-pack build")),
    }
}

/// Refuses bundle file `rel` when `data`, the bytes this run read and will use, are not what the
/// bundle's manifest lists: the bundle was altered (or is being changed) after `ebpf-pack build`.
/// Every later step uses these same bytes, never the file again: what is checked is what is loaded.
fn check_listed_sum(
    manifest: Option<&Json>,
    bundle: &Bundle,
    rel: &str,
    data: &[u8],
) -> Result<(), Failure> {
    let Some(manifest) = manifest else {
        return Ok(());
    };
    let listed = manifest
        .get("files")
        .and_then(Json::as_array)
        .and_then(|files| files.iter().find(|f| f.str_at("path") == Some(rel)))
        .and_then(|f| f.str_at("sha256"));
    match listed {
        Some(sum) if sum == ebpf_pack_manifest::embedded::sha256_hex(data) => Ok(()),
        Some(_) => Err(Failure::new(
            Exit::BadInput,
            format!(
                "{}: checksum mismatch with manifest.json: the bundle was altered after it was built",
                bundle.root.join(rel).display()
            ),
        )
        .hint("unpack the bundle again (or copy it again and compare it with its .sha256), or rebuild it")),
        None => {
            eprintln!("ebpf-run: warning: {rel} is not in the bundle's manifest.json: not checked");
            Ok(())
        }
    }
}

/// Test builds only: runs `EBPF_RUN_TEST_AFTER_CHECK` (a program) once every bundle file is checked
/// and read, so a test can change the files between the check and the load. Not in release builds.
fn after_check_hook() {
    #[cfg(debug_assertions)]
    if let Some(program) = std::env::var_os("EBPF_RUN_TEST_AFTER_CHECK") {
        let _ = std::process::Command::new(program).status();
    }
}

/// `--list`: the bundle's manifest header (when a listed probe is the bundle's), then every selected
/// probe, each checked against its manifest entry.
pub fn list(opts: &Options) -> Result<(), Failure> {
    let (probes, bundle, _) = read_probes(opts)?;
    let mut text = String::new();
    let manifest_path = bundle.root.join(MANIFEST_FILE);
    let manifest = match bundle_manifest(&bundle, &probes) {
        Some(Ok(json)) => Some(json),
        Some(Err(e)) => {
            warn_manifest(&mut text, &manifest_path, &e);
            None
        }
        None => None,
    }
    .filter(|json| match list::describe_bundle(json, &mut text) {
        Ok(()) => true,
        Err(e) => {
            warn_manifest(&mut text, &manifest_path, &e);
            false
        }
    });
    for p in &probes {
        list::describe(p, &opts.attach, &mut text);
        let (Some(manifest), Some(rel)) = (&manifest, in_bundle(&bundle, p)) else {
            continue;
        };
        let problem = match list::manifest_entry(manifest, &rel) {
            Some(entry) => list::manifest_mismatch(entry, p),
            None => Some(format!("{rel} is not in manifest.json")),
        };
        if let Some(problem) = problem {
            text.push_str("  warning: ");
            text.push_str(&problem);
            text.push_str(": the bundle changed after `ebpf-pack build`; rebuild it\n");
        }
    }
    let _ = io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// A manifest that cannot be used: `--list` says so and lists the objects alone.
fn warn_manifest(text: &mut String, path: &Path, problem: &str) {
    text.push_str("warning: ");
    text.push_str(&path.to_string_lossy());
    text.push_str(": ");
    text.push_str(problem);
    text.push_str("; listing the objects alone\n");
}

/// `--check`: whether this kernel can run the selected probes.
pub fn check(opts: &Options) -> Result<(), Failure> {
    let (probes, bundle, _) = read_probes(opts)?;
    let source = bundle::choose_btf(opts.btf.as_deref(), &bundle.root, |p| bundle.exists(p));
    // The manifest's lowest kernel, when a probe checked is the bundle's.
    let min_kernel = bundle_manifest(&bundle, &probes)
        .and_then(Result::ok)
        .and_then(|m| m.get("target")?.str_at("kernel_version").map(str::to_owned));
    crate::check::check(
        &probes,
        source,
        &|p| bundle.read(p),
        min_kernel.as_deref(),
        opts.kconfig.as_deref(),
    )
}

/// Parses the chosen kernel BTF (or decides none is needed), refusing CO-RE objects without one. From
/// the running kernel's BTF only the types the probes' relocations can match are kept (unless
/// `full`: `--full-btf`, or programs that attach by kernel type ids, which parse it whole anyway).
fn kernel_btf(
    source: BtfSource,
    probes: &[ProbeObject],
    (bundle, manifest): (&Bundle, Option<&Json>),
    full: bool,
) -> Result<KernelBtf, Failure> {
    let core = probes.iter().find(|p| p.core);
    let parse = |path: &Path| {
        let data = bundle.read(path).map_err(|e| {
            Failure::new(
                Exit::BadInput,
                format!("cannot read BTF file {}: {e}", path.display()),
            )
            .hint("pass --btf with the running kernel's BTF, or omit --btf to use the bundle's or the kernel's")
        })?;
        let unusable = |why: String| {
            Failure::new(
                Exit::BadInput,
                format!("cannot use BTF {}: {why}", path.display()),
            )
            .hint("pass --btf with a raw BTF file of the running kernel (e.g. made by `bpftool gen min_core_btf`)")
        };
        if let Some(rel) = path.strip_prefix(&bundle.root).ok().and_then(Path::to_str) {
            check_listed_sum(manifest, bundle, rel, &data)?;
        }
        // aya reads some offsets of a BTF file unchecked: vet every one of them first.
        btf::check_loadable(&data, None).map_err(|e| unusable(e.to_string()))?;
        Btf::parse(&data, Endianness::default()).map_err(|e| unusable(chain(&e)))
    };
    Ok(match source {
        BtfSource::File(path) => KernelBtf::Parsed(parse(&path)?),
        BtfSource::Kernel if core.is_some() && !full => match tailored_kernel_btf(probes)? {
            Some(btf) => KernelBtf::Parsed(btf),
            None => KernelBtf::AyaDefault,
        },
        // aya parses the kernel's BTF itself (in `EbpfLoader::new`) but silently ignores one it cannot
        // read: vet it first when CO-RE depends on it. A second full parse would double peak memory.
        BtfSource::Kernel if core.is_some() => {
            vet_kernel_btf()?;
            KernelBtf::AyaDefault
        }
        BtfSource::Kernel => KernelBtf::AyaDefault,
        BtfSource::None => match core {
            Some(p) => return Err(bundle::missing_btf(&p.name)),
            None => KernelBtf::None,
        },
    })
}

/// The kernel BTF a run cannot use (unreadable, truncated, or of an unknown layout).
fn unusable_kernel_btf(problem: &str) -> Failure {
    Failure::new(
        Exit::BadInput,
        format!("cannot use the kernel's BTF {KERNEL_BTF}: {problem}"),
    )
    .hint("pass --btf FILE with a BTF of the running kernel that this ebpf-run can read")
}

/// Refuses a kernel BTF that aya could not use.
fn vet_kernel_btf() -> Result<(), Failure> {
    std::fs::read(KERNEL_BTF)
        .map_err(|e| e.to_string())
        .and_then(|data| btf::check(&data).map_err(|e| e.to_string()))
        .map(drop)
        .map_err(|e| unusable_kernel_btf(&e))
}

/// The running kernel's BTF cut down to the types the CO-RE relocations of `probes` can match, parsed
/// by aya (a few KB instead of megabytes). `None` when a probe needs the whole BTF (it relocates kernel
/// type ids), which is then vetted for aya to parse.
fn tailored_kernel_btf(probes: &[ProbeObject]) -> Result<Option<Btf>, Failure> {
    let data = std::fs::read(KERNEL_BTF).map_err(|e| unusable_kernel_btf(&e.to_string()))?;
    let kernel = btf::RawBtf::index(&data).map_err(|e| unusable_kernel_btf(&e.to_string()))?;
    let mut relos = Vec::new();
    for p in probes.iter().filter(|p| p.core) {
        let (Some(local), Ok(r)) = (&p.btf, p.core_relos()) else {
            // aya reports an object it cannot read better than a guess here.
            return Ok(None);
        };
        relos.push((local, r));
    }
    let objects: Vec<(&btf::Btf, &[btf::CoreRelo])> =
        relos.iter().map(|(b, r)| (*b, r.as_slice())).collect();
    match btf::tailor(&kernel, &objects) {
        // Cut from the kernel's own BTF, vetted like any BTF file before aya parses it.
        Ok(Ok(tailored)) if btf::check_loadable(&tailored, None).is_ok() => {
            Ok(Btf::parse(&tailored, Endianness::default()).ok())
        }
        // Relocations this cutting cannot serve, local BTF it cannot follow, or a cut that does not
        // pass the check: aya's full parse.
        Ok(_) | Err(_) => Ok(None),
    }
}

/// Refuses, naming the privilege, when this process may not create a BPF map at all: otherwise the
/// first feature probe that fails (the ring buffer's) would be taken for a kernel without the feature.
fn check_privilege() -> Result<(), Failure> {
    match sys::probe_map_type(map_types::ARRAY, 4, 4, 1) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(Failure::new(
            Exit::Load,
            "no privilege to use BPF: the kernel refused to create a map (EPERM)",
        )
        .hint(
            "run as root, or with CAP_BPF plus CAP_PERFMON (tracing programs) or CAP_NET_ADMIN \
             (network programs), e.g. setpriv --inh-caps=+bpf,+perfmon --ambient-caps=+bpf,+perfmon",
        )),
        _ => Ok(()),
    }
}

/// The run's options with the tools' `-d`, `-i` and `interval [count]` filled in; the same setting
/// given both ways must agree.
fn merge_tool_timing(opts: &Options, tool: &ToolArgs) -> Result<Options, Failure> {
    let mut merged = opts.clone();
    let pairs = [
        ("--duration", &mut merged.duration_secs, tool.duration_secs),
        ("--interval", &mut merged.interval_secs, tool.interval_secs),
        ("--count", &mut merged.count, tool.count),
    ];
    for (flag, slot, from_tool) in pairs {
        match (*slot, from_tool) {
            (Some(a), Some(b)) if a != b => {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("{flag} {a} and the tool's own {b} disagree"),
                )
                .hint("give it once"));
            }
            (None, Some(b)) => *slot = Some(b),
            _ => {}
        }
    }
    if merged.count.is_some() && merged.interval_secs.is_none() {
        return Err(Failure::new(
            Exit::Usage,
            "a count needs an interval: TOOL interval count",
        ));
    }
    Ok(merged)
}

/// Runs the probes until SIGINT/SIGTERM or `--duration`, printing events, then dumps maps and detaches.
pub fn run(opts: &Options) -> Result<(), Failure> {
    let (mut probes, bundle, tool) = read_probes(opts)?;
    if let Some(p) = tool.help.and_then(|i| probes.get(i)) {
        let options = p
            .btf
            .as_ref()
            .map(options::tool_options)
            .unwrap_or_default();
        let _ = io::stdout().write_all(tool_args::help(&p.name, &options).as_bytes());
        return Ok(());
    }
    let opts = &merge_tool_timing(opts, &tool)?;
    let manifest = checked_manifest(&bundle, &probes)?;
    for p in &probes {
        if let Some(rel) = in_bundle(&bundle, p) {
            check_listed_sum(manifest.as_ref(), &bundle, &rel, &p.data)?;
        }
    }
    // Old kernels charge maps to RLIMIT_MEMLOCK; newer ones ignore it. Failure is harmless here. Raised
    // before the first map is created, so a low limit is not taken for missing privilege.
    let _ = sys::raise_memlock_limit();
    check_privilege()?;
    let plans = probes
        .iter()
        .map(|p| attach::plan(p, &opts.attach))
        .collect::<Result<Vec<Vec<PlannedProgram>>, _>>()?;
    let source = bundle::choose_btf(opts.btf.as_deref(), &bundle.root, |p| bundle.exists(p));
    let by_type_id = plans
        .iter()
        .flatten()
        .find(|p| p.point.needs_kernel_btf())
        .cloned();
    let btf = kernel_btf(
        source,
        &probes,
        (&bundle, manifest.as_ref()),
        opts.full_btf || by_type_id.is_some(),
    )?;
    after_check_hook();
    // The embedded bundle's copies are no longer needed once the objects and BTF are read.
    drop(bundle);
    let settings = globals::resolve(&opts.sets, &tool.sets, &probes)?;
    for (probe, settings) in probes.iter_mut().zip(settings) {
        globals::apply(probe, &settings)?;
    }
    for note in kconfig::apply(&mut probes, opts.kconfig.as_deref())? {
        eprintln!("ebpf-run: {note}");
    }
    for probe in probes.iter_mut() {
        for note in attach::size_stack_values(probe)? {
            eprintln!("ebpf-run: {note}");
        }
    }
    let mut plans = plans;
    for (probe, plan) in probes.iter().zip(plans.iter_mut()) {
        attach::resolve_templates(probe, plan)?;
    }
    let has_ring = probes.iter().any(|p| {
        p.maps
            .iter()
            .any(|m| m.map_type == Some(map_types::RINGBUF))
    });
    let no_ring = has_ring && !fallback::kernel_has_ringbuf();
    for switched in fallback::apply(&mut probes, opts.perf_buffer || no_ring, !no_ring)? {
        eprintln!("ebpf-run: {switched}: using its perf-buffer fallback");
    }

    if let Err(e) = sys::install_stop_handlers() {
        eprintln!(
            "ebpf-run: warning: cannot handle SIGINT/SIGTERM ({e}); maps will not be printed on Ctrl-C"
        );
    }

    // Without the kernel's own BTF, the programs that attach by it are left out (or fail the run
    // where nothing else of their object runs): `missing` says why.
    let (kernel, missing) = match by_type_id {
        Some(_) => match Btf::from_sys_fs() {
            Ok(btf) => (Some(btf), None),
            Err(e) => (None, Some(chain(&e))),
        },
        None => (None, None),
    };
    let mut skipped: Vec<(String, attach::Skipped)> = Vec::new();

    let mut loaded: Vec<Ebpf> = Vec::with_capacity(probes.len());
    let mut loader = attach::loader(&btf, kernel.as_ref());
    for (probe, plan) in probes.iter().zip(plans.iter_mut()) {
        for note in attach::size_maps(&mut loader, probe, &opts.map_sizes) {
            eprintln!("ebpf-run: {note}");
        }
        let mut ebpf = attach::load(&mut loader, probe)?;
        for s in attach::load_programs(
            &probe.name,
            &mut ebpf,
            plan,
            kernel.as_ref(),
            missing.as_deref(),
        )? {
            skipped.push((probe.name.clone(), s));
        }
        loaded.push(ebpf);
    }
    drop(loader);
    // Kernel BTF can be megabytes: free it before the long-running part.
    drop(btf);
    drop(kernel);
    let mut programs = 0;
    let mut keep = attach::Keep::new();
    for ((probe, plan), ebpf) in probes.iter().zip(plans.iter_mut()).zip(&mut loaded) {
        for s in attach::attach_programs(&probe.name, ebpf, plan, &mut keep)? {
            skipped.push((probe.name.clone(), s));
        }
        programs += plan.len();
    }
    // Programs left out while others of their object run: said, or fatal under --strict.
    for (_, s) in &skipped {
        // The message names the probe and the program already.
        eprintln!("ebpf-run: skipped: {}", s.why.message);
        if let Some(hint) = &s.why.hint {
            eprintln!("  help: {hint}");
        }
    }
    if opts.strict
        && let Some((_, first)) = skipped.into_iter().next()
    {
        return Err(first
            .why
            .hint("without --strict, the object's other programs run"));
    }
    let cpu_slots = dump::read_possible_cpu_slots();
    let mut streams = Vec::new();
    for (i, (probe, ebpf)) in probes.iter().zip(&mut loaded).enumerate() {
        streams.extend(events::open_streams(
            i,
            probe,
            ebpf,
            cpu_slots.unwrap_or(0),
        )?);
    }

    let names: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "ebpf-run: {programs} program{} attached ({}); stop with Ctrl-C",
        if programs == 1 { "" } else { "s" },
        names.join(", ")
    );

    // A duration too long to represent simply never ends.
    let deadline = opts
        .duration_secs
        .and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
    let json = opts.format == Format::Json;
    // JSON: each round of dumps ends with `{"dump":"interval"}` (or `"exit"`), so a reader knows a
    // snapshot of every map is complete (ebpf-pack run --interval redraws its view on it).
    let dump_round = |out: &mut dyn Write, end: &str| -> io::Result<()> {
        for (probe, ebpf) in probes.iter().zip(&loaded) {
            dump::dump_maps(probe, ebpf, cpu_slots, json, &keep.names, out)?;
        }
        if json {
            writeln!(out, "{{\"dump\":\"{end}\"}}")?;
        }
        Ok(())
    };
    let mut dump_interval = |out: &mut dyn Write| {
        dump_round(out, "interval")?;
        for (probe, ebpf) in probes.iter().zip(&loaded) {
            dump::clear_interval_maps(probe, ebpf, cpu_slots);
        }
        Ok(())
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let ticker = opts.interval_secs.map(|s| events::Ticker {
        every: Duration::from_secs(s),
        run: &mut dump_interval,
        // `interval count`: count rounds in all, the exit dump being the last.
        remaining: opts.count.map(|n| n.saturating_sub(1)),
    });
    let mut result = events::watch(&mut streams, &probes, deadline, json, ticker, &mut out);
    if result.is_ok() {
        result = dump_round(&mut out, "exit");
    }
    if result.is_ok() {
        result = events::report_counts(&streams, &probes, json, &mut out);
    }
    let _ = out.flush();
    // Dropping the ring buffers and objects detaches every link and closes every fd; nothing is pinned.
    drop(streams);
    drop(loaded);
    drop(keep);
    match result {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("ebpf-run: warning: output stopped: {e}");
            Ok(())
        }
        _ => Ok(()),
    }
}
