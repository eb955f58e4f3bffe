//! Packs what an installed `ebpf-pack` carries besides the built-in targets: the probe headers
//! (`probes/include`), the toolbox's sources (`probes/*.bpf.c`) and the source of the `ebpf-run` loader with its lock file, as one deterministic
//! tar.gz plus a table of every file's SHA-256 (`src/assets.rs` extracts and checks them at run time).
//!
//! The loader source is the `loader`, `manifest` and `bpfobj` crates under a workspace manifest that
//! lists only them, and `Cargo.lock` pruned to the packages those three reach, so `cargo build --locked`
//! accepts it and resolves exactly the versions this checkout pins.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The workspace members the loader needs, in the reduced workspace.
const LOADER_MEMBERS: &[&str] = &["bpfobj", "loader", "manifest"];
/// Package names of those members (roots of the lock-file walk).
const LOADER_PACKAGES: &[&str] = &["ebpf-pack-object", "ebpf-run", "ebpf-pack-manifest"];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let repo = manifest_dir
        .parent()
        .expect("cli/ has a parent folder")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));

    // (path inside the archive, bytes), sorted by path.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    add_tree(&mut files, &repo.join("probes/include"), "include");
    // The toolbox: the ready tools' sources, which projects pick with `tools:`.
    let probes = repo.join("probes");
    watch(&probes);
    let mut tools: Vec<PathBuf> = fs::read_dir(&probes)
        .unwrap_or_else(|e| panic!("read {}: {e}", probes.display()))
        .map(|e| e.expect("read a folder entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    tools.sort();
    for tool in tools {
        watch(&tool);
        let name = tool
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 tool name");
        files.insert(format!("tools/{name}"), read(&tool));
    }
    for member in LOADER_MEMBERS {
        let dir = repo.join(member);
        for name in ["Cargo.toml", "build.rs", "no-eh-frame.ld"] {
            let file = dir.join(name);
            if file.is_file() {
                watch(&file);
                files.insert(format!("loader-src/{member}/{name}"), read(&file));
            }
        }
        add_tree(
            &mut files,
            &dir.join("src"),
            &format!("loader-src/{member}/src"),
        );
    }
    let root_manifest = repo.join("Cargo.toml");
    watch(&root_manifest);
    files.insert(
        "loader-src/Cargo.toml".into(),
        loader_workspace_manifest(&String::from_utf8_lossy(&read(&root_manifest))).into_bytes(),
    );
    let lock = repo.join("Cargo.lock");
    watch(&lock);
    files.insert(
        "loader-src/Cargo.lock".into(),
        prune_lock(&String::from_utf8_lossy(&read(&lock))).into_bytes(),
    );

    // The archive: sorted entries, fixed owner, mode and time, gzip header without a time.
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut index = String::new();
    let mut all = Sha256::new();
    for (path, bytes) in &files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, bytes.as_slice())
            .expect("append to the in-memory archive");
        let sha = hex(&Sha256::digest(bytes));
        all.update(format!("{sha}  {path}\n"));
        index.push_str(&format!("    ({path:?}, {sha:?}),\n"));
    }
    let archive = tar
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish the in-memory archive");
    fs::write(out_dir.join("assets.tar.gz"), archive).expect("write assets.tar.gz");
    let mut rs = fs::File::create(out_dir.join("assets_index.rs")).expect("create assets_index.rs");
    write!(
        rs,
        "/// SHA-256 over the file table below: names the extracted folder.\n\
         pub const DIGEST: &str = {:?};\n\
         /// Every packed file and its SHA-256, sorted by path.\n\
         pub const FILES: &[(&str, &str)] = &[\n{index}];\n",
        hex(&all.finalize())
    )
    .expect("write assets_index.rs");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds every file under `dir` as `prefix/relative/path`.
fn add_tree(files: &mut BTreeMap<String, Vec<u8>>, dir: &Path, prefix: &str) {
    watch(dir);
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("read a folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file names under the packed folders are UTF-8")
            .to_string();
        let inner = format!("{prefix}/{name}");
        if path.is_dir() {
            add_tree(files, &path, &inner);
        } else {
            watch(&path);
            files.insert(inner, read(&path));
        }
    }
}

/// The workspace manifest with only the loader's members: everything else (dependencies, lints,
/// profiles) stays as the checkout has it, so the loader builds with the same settings.
fn loader_workspace_manifest(root: &str) -> String {
    let members = LOADER_MEMBERS
        .iter()
        .map(|m| format!("{m:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = String::new();
    let mut replaced = false;
    for line in root.lines() {
        if line.starts_with("members = ") {
            out.push_str(&format!("members = [{members}]\n"));
            replaced = true;
        } else if line.starts_with("default-members = ") {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        replaced,
        "the workspace Cargo.toml has a `members = [...]` line"
    );
    out
}

/// One `[[package]]` of a lock file: its text and what it names.
struct LockedPackage {
    text: String,
    name: String,
    version: String,
    dependencies: Vec<String>,
}

/// `Cargo.lock` with only the packages the loader's members reach (normal, build and dev
/// dependencies all appear in the lock file, so all are followed).
fn prune_lock(lock: &str) -> String {
    let mut blocks = lock.split("\n[[package]]\n");
    let header = blocks.next().expect("a lock file has a header");
    let packages: Vec<LockedPackage> = blocks.map(parse_locked).collect();
    let mut keep: BTreeSet<usize> = BTreeSet::new();
    let mut todo: Vec<usize> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| LOADER_PACKAGES.contains(&p.name.as_str()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        todo.len(),
        LOADER_PACKAGES.len(),
        "Cargo.lock lists the loader's members"
    );
    while let Some(i) = todo.pop() {
        if !keep.insert(i) {
            continue;
        }
        for dep in &packages[i].dependencies {
            // "name", or "name version" when several versions are locked.
            let mut words = dep.split(' ');
            let name = words.next().unwrap_or_default();
            let version = words.next();
            let found = packages
                .iter()
                .position(|p| p.name == name && version.is_none_or(|v| v == p.version))
                .unwrap_or_else(|| panic!("Cargo.lock names `{dep}` but has no such package"));
            todo.push(found);
        }
    }
    let mut out = header.to_string();
    for i in keep {
        out.push_str("\n[[package]]\n");
        out.push_str(&packages[i].text);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn parse_locked(block: &str) -> LockedPackage {
    let text = block.trim_end_matches('\n').to_string() + "\n";
    let field = |key: &str| {
        block
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let mut dependencies = Vec::new();
    let mut in_deps = false;
    for line in block.lines() {
        if line.starts_with("dependencies = [") {
            in_deps = true;
        } else if in_deps && line.starts_with(']') {
            in_deps = false;
        } else if in_deps {
            let dep = line.trim().trim_end_matches(',').trim_matches('"');
            // "name version (source)" spells the source only when names collide across sources.
            let dep = dep.split(" (").next().unwrap_or(dep);
            dependencies.push(dep.to_string());
        }
    }
    LockedPackage {
        name: field("name"),
        version: field("version"),
        dependencies,
        text,
    }
}
