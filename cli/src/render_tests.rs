//! Tests of the renderer: small cases inline, and snapshots of the JSON streams ebpf-run wrote on this
//! host for every probe (tests/fixtures/streams, see its README), with and without timestamps.

use std::time::Duration;

use super::*;

/// Recorded streams, by name.
const OPENSNOOP: &str = include_str!("../../tests/fixtures/streams/opensnoop.jsonl");
const EXECSNOOP: &str = include_str!("../../tests/fixtures/streams/execsnoop.jsonl");
const SYSCOUNT: &str = include_str!("../../tests/fixtures/streams/syscount.jsonl");
const SYSCOUNT_INTERVAL: &str =
    include_str!("../../tests/fixtures/streams/syscount-interval.jsonl");
const SYSRET: &str = include_str!("../../tests/fixtures/streams/sysret.jsonl");
const ALL: &str = include_str!("../../tests/fixtures/streams/all.jsonl");
const PROFILE: &str = include_str!("../../tests/fixtures/streams/profile.jsonl");

/// Renders a stream; line `i` arrives at 12:34:56 + 0.25 s * i, 0.25 s * i into the run.
fn render_with(mut r: Renderer, lines: &str) -> String {
    lines
        .lines()
        .enumerate()
        .flat_map(|(i, l)| {
            let elapsed = Duration::from_millis(250 * i as u64);
            let at = Arrival {
                time_of_day: Duration::from_secs(12 * 3600 + 34 * 60 + 56) + elapsed,
                elapsed,
            };
            r.line_at(l, at)
        })
        .map(|l| l + "\n")
        .collect()
}

/// Renders a whole stream, the lines held at its end included.
fn render_with_end(r: &mut Renderer, lines: &str) -> String {
    let mut out: Vec<String> = lines.lines().flat_map(|l| r.line(l)).collect();
    out.extend(r.finish());
    out.iter().map(|l| format!("{l}\n")).collect()
}

fn render(lines: &str) -> String {
    render_with(Renderer::new(), lines)
}

#[test]
fn events_map_dumps_and_summaries() {
    // Recorded from ebpf-run --format json on this host (hello of `ebpf-pack init`, syscount).
    let text = render(concat!(
        "{\"probe\":\"hello\",\"map\":\"events\",\"ppid\":6435,\"pid\":6440,\"uid\":0,\"comm\":\"bash\"}\n",
        "{\"probe\":\"hello\",\"map\":\"events\",\"ppid\":6435,\"pid\":16441,\"uid\":0,\"comm\":\"systemd-journal\"}\n",
        "{\"probe\":\"syscount\",\"map\":\"counts\",\"key\":321,\"value\":645}\n",
        "{\"probe\":\"syscount\",\"map\":\"counts\",\"key\":5,\"value\":81}\n",
        "{\"probe\":\"hello\",\"map\":\"events\",\"ppid\":1,\"pid\":2,\"uid\":0,\"comm\":\"init\"}\n",
        "{\"probe\":\"hello\",\"map\":\"events\",\"printed\":3,\"lost\":0}\n",
        "ebpf-run: not json\n",
    ));
    insta::assert_snapshot!(text);
}

#[test]
fn syscall_numbers_become_the_boards_names() {
    let lines = concat!(
        "{\"probe\":\"syscount\",\"map\":\"counts\",\"key\":56,\"value\":9}\n",
        "{\"probe\":\"syscount\",\"map\":\"counts\",\"key\":1000,\"value\":1}\n",
        "{\"probe\":\"slow\",\"map\":\"events\",\"pid\":7,\"syscall_nr\":81,\"ns\":5}\n",
        "{\"probe\":\"lat\",\"map\":\"by_call\",\"key\":{\"pid\":7,\"syscall\":56},\"value\":3}\n",
        "{\"probe\":\"lat\",\"map\":\"by_pid\",\"key\":56,\"value\":3}\n",
    );
    let arm64 = render_with(Renderer::for_arch(Arch::Arm64), lines);
    let rows: Vec<&str> = arm64.lines().collect();
    assert_eq!(rows[2], format!("{:<22} {:>8}", "openat", 9), "{arm64}");
    assert_eq!(
        rows[3],
        format!("{:<22} {:>8}", "1000", 1),
        "unknown stays a number"
    );
    assert_eq!(
        rows[5],
        format!("{:<12} {:<7} {:<16} 5", "slow", 7, "sync"),
        "{arm64}"
    );
    assert!(
        arm64.contains(&format!("       7 {:<22} {:>8}", "openat", 3)),
        "{arm64}"
    );
    assert!(
        arm64.contains("      56        3"),
        "an unlabelled key: {arm64}"
    );
    // Without an arch, numbers stay numbers; the columns are still named for syscalls.
    let plain = render(lines);
    assert!(
        plain.contains("SYSCALL") && plain.contains("56 "),
        "{plain}"
    );
    assert!(!plain.contains("openat"), "{plain}");
}

#[test]
fn a_dump_ends_where_its_keys_come_again() {
    let text = render(SYSCOUNT_INTERVAL);
    assert_eq!(text.matches("syscount map counts:").count(), 3, "{text}");
    assert_eq!(text.matches("SYSCALL").count(), 3, "{text}");
}

#[test]
fn dumps_keep_the_loaders_order_biggest_first() {
    let text = render_with(Renderer::for_arch(Arch::X86_64), SYSCOUNT);
    let counts: Vec<u64> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), SYSCOUNT.lines().count());
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{text}");
}

#[test]
fn errors_histograms_and_struct_members_in_written_order() {
    let text = render(concat!(
        "{\"probe\":\"p\",\"map\":\"lat_us\",\"key\":{\"zpid\":1,\"acomm\":\"sh\"},\"value\":{\"slots\":[0,2,1]}}\n",
        "{\"probe\":\"p\",\"map\":\"lat_us\",\"key\":{\"zpid\":2,\"acomm\":\"ls\"},\"value\":{\"slots\":[]}}\n",
        "{\"probe\":\"p\",\"map\":\"pairs\",\"key\":{\"zpid\":1,\"acomm\":\"sh\"},\"value\":{\"n\":4,\"bytes\":9}}\n",
        "{\"probe\":\"p\",\"map\":\"big\",\"error\":\"cannot read: EPERM\"}\n",
    ));
    insta::assert_snapshot!(text);
}

#[test]
fn wall_clock_and_relative_stamps() {
    let lines = "{\"probe\":\"p\",\"map\":\"events\",\"pid\":1}\n{\"probe\":\"p\",\"map\":\"events\",\"pid\":2}\n";
    let wall = render_with(
        Renderer::new().with_timestamps(Timestamps::WallClock),
        lines,
    );
    assert_eq!(
        wall,
        "TIME     PROBE        PID\n12:34:56 p            1\n12:34:56 p            2\n"
    );
    let rel = render_with(Renderer::new().with_timestamps(Timestamps::Relative), lines);
    assert_eq!(
        rel,
        "TIME(s)   PROBE        PID\n0.000     p            1\n0.250     p            2\n"
    );
    let late = Arrival {
        time_of_day: Duration::from_secs(86_399),
        elapsed: Duration::ZERO,
    };
    assert_eq!(late.stamp(Timestamps::WallClock), "23:59:59");
}

#[test]
fn bad_input_never_panics() {
    let mut r = Renderer::for_arch(Arch::Arm).with_timestamps(Timestamps::WallClock);
    for line in [
        "",
        "{",
        "[1,2]",
        "null",
        "{}",
        "{\"probe\":1,\"map\":null,\"key\":[1],\"value\":{\"slots\":\"x\"}}",
        "{\"probe\":\"p\",\"map\":\"m\",\"key\":-1,\"value\":{\"slots\":[-1,1e300]}}",
        "{\"probe\":\"syscount\",\"map\":\"counts\",\"key\":18446744073709551615,\"value\":1}",
        "{\"probe\":\"p\",\"map\":\"m\",\"key\":{},\"value\":{}}",
    ] {
        let _ = r.line(line);
    }
}

#[test]
fn recorded_opensnoop() {
    insta::assert_snapshot!(render(OPENSNOOP));
}

#[test]
fn recorded_opensnoop_with_wall_clock() {
    let r = Renderer::for_arch(Arch::X86_64).with_timestamps(Timestamps::WallClock);
    insta::assert_snapshot!(render_with(r, OPENSNOOP));
}

#[test]
fn recorded_execsnoop() {
    insta::assert_snapshot!(render(EXECSNOOP));
}

#[test]
fn recorded_execsnoop_with_relative_time() {
    let r = Renderer::for_arch(Arch::X86_64).with_timestamps(Timestamps::Relative);
    insta::assert_snapshot!(render_with(r, EXECSNOOP));
}

#[test]
fn recorded_syscount() {
    insta::assert_snapshot!(render(SYSCOUNT));
}

#[test]
fn recorded_syscount_for_x86_64() {
    insta::assert_snapshot!(render_with(Renderer::for_arch(Arch::X86_64), SYSCOUNT));
}

#[test]
fn recorded_syscount_every_interval_with_wall_clock() {
    let r = Renderer::for_arch(Arch::X86_64).with_timestamps(Timestamps::WallClock);
    insta::assert_snapshot!(render_with(r, SYSCOUNT_INTERVAL));
}

#[test]
fn recorded_histograms_per_syscall_for_x86_64() {
    insta::assert_snapshot!(render_with(Renderer::for_arch(Arch::X86_64), SYSRET));
}

#[test]
fn recorded_histograms_with_wall_clock() {
    let r = Renderer::new().with_timestamps(Timestamps::WallClock);
    insta::assert_snapshot!(render_with(r, SYSRET));
}

#[test]
fn recorded_all_probes_at_once_for_x86_64() {
    insta::assert_snapshot!(render_with(Renderer::for_arch(Arch::X86_64), ALL));
}

#[test]
fn recorded_all_probes_at_once_with_wall_clock() {
    let r = Renderer::for_arch(Arch::X86_64).with_timestamps(Timestamps::WallClock);
    insta::assert_snapshot!(render_with(r, ALL));
}

#[test]
fn a_single_tool_prints_bcc_columns_without_a_probe_column() {
    // ebpf-run tcplife --format json, as on this host (IP addresses as text, sizes in KiB).
    let stream = r#"{"probe":"tcplife","map":"events","pid":4242,"comm":"curl","laddr":"127.0.0.1","lport":40980,"raddr":"127.0.0.1","rport":8080,"tx_kb":10,"rx_kb":2,"ms":3}
{"probe":"tcplife","map":"events","pid":77,"comm":"sshd","laddr":"::1","lport":22,"raddr":"::1","rport":51514,"tx_kb":0,"rx_kb":1,"ms":1200}"#;
    let text = render_with(Renderer::new().with_single_probe(true), stream);
    assert_eq!(
        text,
        "PID     COMM             LADDR            LPORT   RADDR            RPORT   TX_KB   RX_KB   MS\n\
         4242    curl             127.0.0.1        40980   127.0.0.1        8080    10      2       3\n\
         77      sshd             ::1              22      ::1              51514   0       1       1200\n"
    );
}

#[test]
fn toolbox_dumps_render_as_bcc_tables_and_histograms() {
    // The shapes of the toolbox's map dumps, as ebpf-run --format json writes them on this host:
    // syscount's struct values under syscall numbers, softirqs' enum keys, biolatency's per-disk
    // histograms summed over the CPUs.
    let stream = r#"{"probe":"syscount","map":"counts","key":39,"value":{"count":1000,"total_ns":250000}}
{"probe":"syscount","map":"counts","key":0,"value":{"count":12,"total_ns":9000}}
{"dump":"exit"}
{"probe":"softirqs","map":"softirqs","key":"net_rx","value":{"total_ns":81234,"count":200}}
{"probe":"softirqs","map":"softirqs","key":"timer","value":{"total_ns":5000,"count":9}}
{"dump":"exit"}
{"probe":"biolatency","map":"hist_us","key":{"disk":"7:0"},"value":{"slots":[0,0,0,0,0,0,4,12]}}
{"dump":"exit"}"#;
    insta::assert_snapshot!(render_with(Renderer::for_arch(Arch::X86_64), stream));
}

#[test]
fn recorded_profile_folds_its_stacks() {
    let mut r = Renderer::for_arch(Arch::X86_64).with_single_probe(true);
    let text = render_with_end(&mut r, PROFILE);
    insta::assert_snapshot!(text);
}
