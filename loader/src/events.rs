//! Ring buffer events: open every RINGBUF map, wait on them with `poll(2)`, and print one line per record,
//! decoded through the record type the probe names with `__ebpf_pack_event_<map>`. Records the probe
//! could not reserve are counted by the probe in `__ebpf_pack_lost_<map>`: reported each second they
//! grow and at exit, so none is lost silently.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use aya::Ebpf;
use std::ops::ControlFlow;

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::{Map, MapData, PerfEventArray, RingBuf};
use aya::util::online_cpus;

use crate::btf::{EVENT_VAR_PREFIX, LOST_MAP_PREFIX};
use crate::decode::{Decoder, TextPlan, write_hex, write_json_string};
use crate::failure::{Exit, Failure, chain};
use crate::probe::{ProbeObject, sort_short};
use crate::sys::{self, RawMap};

/// Longest single wait, so a stop request or the deadline is noticed promptly.
const POLL_MS: u64 = 100;
/// Most records taken from one ring buffer per batch, so a flood cannot starve the stop check.
const MAX_BATCH: usize = 4096;
/// How often the lost-record counters are read during a run.
const LOST_CHECK: Duration = Duration::from_secs(1);

/// Where a stream's records come from.
enum Source {
    /// A ring buffer (kernel 5.8+).
    Ring(RingBuf<MapData>),
    /// A perf buffer per online CPU (the fallback of `EBPF_PACK_EVENTS`), and the records the kernel
    /// reported lost in them.
    Perf(Vec<PerfEventArrayBuffer<MapData>>, u64),
}

/// Pages of each CPU's perf buffer: 256 KiB with 4 KiB pages, as the probes' ring buffers.
const PERF_PAGES: usize = 64;

/// One ring buffer (or perf buffer) being read.
pub struct EventStream {
    /// Index of the probe in the run's probe list.
    probe: usize,
    /// Map name.
    map: String,
    /// BTF type id of a record, from the `__ebpf_pack_event_<map>` convention.
    record: Option<u32>,
    source: Source,
    /// The probe's lost-record counter of this ring buffer, when it declares one.
    lost_counter: Option<MapData>,
    /// Slots of a per-CPU value (possible CPUs), to read the counter.
    cpu_slots: usize,
    /// Records printed so far.
    printed: u64,
    /// Lost records reported so far.
    lost_reported: u64,
    /// Column widths of this stream's text lines.
    columns: Columns,
    /// The record type's text plan, when it has one (and the probe name is one plain token).
    plan: Option<TextPlan>,
}

/// Widest token an aligned column grows to: a longer value (a path) just pushes the rest of its line.
const MAX_COLUMN: usize = 24;

/// Aligns the `field=value` tokens of successive text lines into columns: token `i` of every line is
/// padded to the widest token `i` seen so far (at most [`MAX_COLUMN`]); the last token is not padded.
/// Tokens are separated by single spaces; a quoted string (`"a b"`, with `\` escapes) is one token.
#[derive(Debug, Default)]
pub struct Columns {
    widths: Vec<usize>,
}

impl Columns {
    /// Appends `line` (without its newline) to `out` with its tokens padded to the column widths, in
    /// one pass over the bytes (the decoder writes ASCII only: other bytes are escaped).
    pub fn align_into(&mut self, line: &str, out: &mut String) {
        let bytes = line.as_bytes();
        let (mut start, mut quoted, mut escaped, mut column) = (0, false, false, 0);
        for (i, &c) in bytes.iter().enumerate() {
            match c {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b' ' if !quoted => {
                    out.push_str(&line[start..i]);
                    self.pad(column, i - start, out);
                    start = i + 1;
                    column += 1;
                }
                _ => {}
            }
        }
        out.push_str(&line[start..]);
    }

    /// After token `column` (`len` bytes, just appended to `out`): widens the column to it (at most
    /// [`MAX_COLUMN`]) and appends the padding and the separator (always: also after a token wider
    /// than its column).
    pub fn pad(&mut self, column: usize, len: usize, out: &mut String) {
        if self.widths.len() <= column {
            self.widths.resize(column + 1, 0);
        }
        let Some(width) = self.widths.get_mut(column) else {
            return;
        };
        *width = (*width).max(len.min(MAX_COLUMN));
        for _ in 0..=*width - len.min(*width) {
            out.push(' ');
        }
    }
}

/// Appends one record as an aligned text line through its [`TextPlan`]: the same line as
/// [`format_event`] followed by [`Columns::align_into`], without walking the BTF or the line twice.
pub fn format_planned(
    out: &mut String,
    probe: &str,
    plan: &TextPlan,
    decoder: &Decoder<'_>,
    bytes: &[u8],
    columns: &mut Columns,
) {
    let mut start = out.len();
    out.push_str(probe);
    for i in 0..plan.len() {
        columns.pad(i, out.len() - start, out);
        start = out.len();
        plan.field(decoder, i, bytes, out);
    }
    out.push('\n');
}

impl EventStream {
    /// Records lost so far: the probe's counter (summed over CPUs) when it declares one, for a ring
    /// buffer and its perf-buffer fallback alike; else the kernel's lost notes of a perf buffer; `None`
    /// for a ring buffer without a counter.
    fn lost(&self) -> Option<u64> {
        let Some(counter) = self.lost_counter.as_ref() else {
            return match &self.source {
                Source::Perf(_, lost) => Some(*lost),
                Source::Ring(_) => None,
            };
        };
        let map = RawMap::open(counter.fd().as_fd(), self.cpu_slots).ok()?;
        if map.value_size != 8 {
            return None;
        }
        let bytes = map.lookup(&0u32.to_ne_bytes()).ok()??;
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| c.first_chunk::<8>().map_or(0, |b| u64::from_ne_bytes(*b)))
                .fold(0u64, u64::wrapping_add),
        )
    }
}

/// Takes every ring buffer map of a loaded probe out of `ebpf` for reading.
/// Also takes each one's lost-record counter, which is then reported here rather than dumped as a map.
/// `cpu_slots`: possible CPUs (0 when unknown: lost records are then not counted).
pub fn open_streams(
    index: usize,
    probe: &ProbeObject,
    ebpf: &mut Ebpf,
    cpu_slots: usize,
) -> Result<Vec<EventStream>, Failure> {
    // Ring buffers, and perf buffers that carry a declared record type (switched fallbacks).
    let mut names: Vec<String> = ebpf
        .maps()
        .filter(|(n, m)| match m {
            Map::RingBuf(_) => true,
            Map::PerfEventArray(_) => probe
                .btf
                .as_ref()
                .is_some_and(|b| b.event_record_type(n).is_some()),
            _ => false,
        })
        .map(|(n, _)| n.to_owned())
        .collect();
    sort_short(&mut names, |a, b| a < b);
    let mut streams = Vec::with_capacity(names.len());
    for name in names {
        let Some(map) = ebpf.take_map(&name) else {
            continue;
        };
        let failed = |e: &dyn std::error::Error| {
            Failure::new(
                Exit::Load,
                format!("probe {}: events map `{name}`: {}", probe.name, chain(e)),
            )
        };
        let source = match map {
            Map::PerfEventArray(_) => {
                let mut array = PerfEventArray::try_from(map).map_err(|e| failed(&e))?;
                let cpus = online_cpus().map_err(|(path, e)| {
                    Failure::new(
                        Exit::Load,
                        format!(
                            "probe {}: perf buffer `{name}`: cannot read {path}: {e}",
                            probe.name
                        ),
                    )
                })?;
                let buffers = cpus
                    .into_iter()
                    .map(|cpu| array.open(cpu, Some(PERF_PAGES)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| failed(&e))?;
                Source::Perf(buffers, 0)
            }
            map => Source::Ring(RingBuf::try_from(map).map_err(|e| failed(&e))?),
        };
        let record = probe.btf.as_ref().and_then(|b| b.event_record_type(&name));
        if record.is_none() {
            eprintln!(
                "ebpf-run: note: probe {}: ring buffer `{name}` has no {EVENT_VAR_PREFIX}{name} \
                 declaration (EBPF_PACK_EVENT({name}, <record type>)); printing records as hex",
                probe.name
            );
        }
        let lost_counter = match ebpf.take_map(&format!("{LOST_MAP_PREFIX}{name}")) {
            Some(Map::PerCpuArray(d)) if cpu_slots > 0 => Some(d),
            _ => None,
        };
        let plain_name = !probe.name.bytes().any(|b| matches!(b, b' ' | b'"' | b'\\'));
        let plan = match (&probe.btf, record) {
            (Some(btf), Some(ty)) if plain_name => TextPlan::new(btf, ty),
            _ => None,
        };
        streams.push(EventStream {
            probe: index,
            map: name,
            record,
            plan,
            source,
            lost_counter,
            cpu_slots,
            printed: 0,
            lost_reported: 0,
            columns: Columns::default(),
        });
    }
    Ok(streams)
}

/// Starts a JSON line `{"probe":P,"map":M` (the caller adds members and the closing brace).
pub fn json_head(line: &mut String, probe: &str, map: &str) {
    line.push_str("{\"probe\":");
    write_json_string(line, probe.as_bytes());
    line.push_str(",\"map\":");
    write_json_string(line, map.as_bytes());
}

/// Renders one record as `PROBE field=value ...` (or `PROBE ringbuf=MAP len=N hex=...` without a type),
/// or as JSON `{"probe":P,"map":M,"field":value,...}` (`"len":N,"hex":"..."` without a type).
pub fn format_event(
    line: &mut String,
    probe: &ProbeObject,
    map: &str,
    record: Option<u32>,
    bytes: &[u8],
    json: bool,
) {
    line.clear();
    if json {
        json_head(line, &probe.name, map);
    } else {
        line.push_str(&probe.name);
    }
    match (&probe.btf, record) {
        (Some(btf), Some(ty)) if json => Decoder::json(btf).record(line, ty, bytes, "value"),
        (Some(btf), Some(ty)) => Decoder::new(btf).record(line, ty, bytes, "value"),
        _ if json => {
            line.push_str(",\"len\":");
            line.push_str(&bytes.len().to_string());
            line.push_str(",\"hex\":\"");
            write_hex(line, bytes);
            line.push('"');
        }
        _ => {
            line.push_str(" ringbuf=");
            line.push_str(map);
            line.push_str(" len=");
            line.push_str(&bytes.len().to_string());
            line.push_str(" hex=");
            write_hex(line, bytes);
        }
    }
    if json {
        line.push('}');
    }
    line.push('\n');
}

/// Prints the records waiting in every stream (up to [`MAX_BATCH`] each); returns how many were printed.
pub fn drain(
    streams: &mut [EventStream],
    probes: &[ProbeObject],
    json: bool,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut line = String::new();
    let mut aligned = String::new();
    let mut count = 0;
    for s in streams.iter_mut() {
        let Some(probe) = probes.get(s.probe) else {
            continue;
        };
        let (map, record, columns, plan) = (&s.map, s.record, &mut s.columns, &s.plan);
        let mut print = |bytes: &[u8]| {
            if let (false, Some(plan), Some(btf)) = (json, plan, &probe.btf) {
                aligned.clear();
                format_planned(
                    &mut aligned,
                    &probe.name,
                    plan,
                    &Decoder::new(btf),
                    bytes,
                    columns,
                );
                return out.write_all(aligned.as_bytes());
            }
            format_event(&mut line, probe, map, record, bytes, json);
            if json {
                return out.write_all(line.as_bytes());
            }
            aligned.clear();
            columns.align_into(line.trim_end_matches('\n'), &mut aligned);
            aligned.push('\n');
            out.write_all(aligned.as_bytes())
        };
        let before = count;
        match &mut s.source {
            Source::Ring(ring) => {
                for _ in 0..MAX_BATCH {
                    let Some(item) = ring.next() else { break };
                    print(&item)?;
                    count += 1;
                }
            }
            Source::Perf(buffers, lost) => {
                let mut sample = Vec::new();
                for buffer in buffers.iter_mut().filter(|b| b.readable()) {
                    let flow = buffer.try_fold((), |(), event| match event {
                        PerfEvent::Sample { head, tail } => {
                            let bytes = if tail.is_empty() {
                                head
                            } else {
                                sample.clear();
                                sample.extend_from_slice(head);
                                sample.extend_from_slice(tail);
                                &sample
                            };
                            count += 1;
                            match print(bytes) {
                                Ok(()) => ControlFlow::Continue(()),
                                Err(e) => ControlFlow::Break(e),
                            }
                        }
                        PerfEvent::Lost { count: n } => {
                            *lost += n;
                            ControlFlow::Continue(())
                        }
                    });
                    if let ControlFlow::Break(e) = flow {
                        return Err(e);
                    }
                }
            }
        }
        s.printed += count - before;
    }
    out.flush()?;
    Ok(count)
}

/// Warns on stderr about records lost since the last warning (ring buffer full).
fn warn_lost(streams: &mut [EventStream], probes: &[ProbeObject]) {
    for s in streams.iter_mut() {
        let Some(lost) = s.lost() else { continue };
        if lost > s.lost_reported {
            let probe = probes.get(s.probe).map_or("?", |p| p.name.as_str());
            eprintln!(
                "ebpf-run: warning: {probe} {}: {} records lost (buffer full: the output cannot keep up)",
                s.map,
                lost - s.lost_reported
            );
            s.lost_reported = lost;
        }
    }
}

/// The end-of-run count of every stream: a line on stderr each (`PROBE MAP: N records printed, M lost`),
/// and with `json` also `{"probe":P,"map":M,"printed":N,"lost":M}` on `out` (`"lost":null` when the
/// probe declares no counter).
pub fn report_counts(
    streams: &[EventStream],
    probes: &[ProbeObject],
    json: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut line = String::new();
    for s in streams {
        let probe = probes.get(s.probe).map_or("?", |p| p.name.as_str());
        let lost = s.lost();
        let lost_text = match lost {
            Some(n) => n.to_string(),
            None => "uncounted (the probe does not use EP_RINGBUF_RESERVE)".into(),
        };
        eprintln!(
            "ebpf-run: {probe} {}: {} records printed, {lost_text} lost",
            s.map, s.printed
        );
        if json {
            line.clear();
            json_head(&mut line, probe, &s.map);
            line.push_str(",\"printed\":");
            line.push_str(&s.printed.to_string());
            line.push_str(",\"lost\":");
            line.push_str(&lost.map_or_else(|| "null".into(), |n| n.to_string()));
            line.push_str("}\n");
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// A periodic action during [`watch`]: every `every`, `run` is called with the output.
pub struct Ticker<'a> {
    /// Period.
    pub every: Duration,
    /// What to do each period (print the maps).
    pub run: &'a mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    /// How many periods may still run `run`; the period after the last one ends the watch (the
    /// caller's exit dump is then the last round). `None`: no limit.
    pub remaining: Option<u64>,
}

/// Prints events until SIGINT/SIGTERM or the deadline, running `ticker` on its period, then drains once
/// more.
pub fn watch(
    streams: &mut [EventStream],
    probes: &[ProbeObject],
    deadline: Option<Instant>,
    json: bool,
    mut ticker: Option<Ticker<'_>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut next_tick = ticker
        .as_ref()
        .and_then(|t| Instant::now().checked_add(t.every));
    let mut next_lost_check = Instant::now() + LOST_CHECK;
    loop {
        let now = Instant::now();
        if sys::stop_requested() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_lost_check {
            warn_lost(streams, probes);
            next_lost_check = now + LOST_CHECK;
        }
        if let (Some(t), Some(at)) = (ticker.as_mut(), next_tick)
            && now >= at
        {
            if t.remaining == Some(0) {
                break;
            }
            drain(streams, probes, json, out)?;
            (t.run)(out)?;
            t.remaining = t.remaining.map(|n| n - 1);
            next_tick = at.checked_add(t.every).map(|n| n.max(now));
        }
        let mut wait = Duration::from_millis(POLL_MS);
        for until in [deadline, next_tick].into_iter().flatten() {
            wait = wait.min(until.saturating_duration_since(now));
        }
        let fds: Vec<BorrowedFd<'_>> = streams
            .iter()
            .flat_map(|s| match &s.source {
                Source::Ring(ring) => vec![ring.as_fd()],
                Source::Perf(buffers, _) => buffers.iter().map(|b| b.as_fd()).collect(),
            })
            .collect();
        let ready = sys::poll_readable(&fds, (wait.as_millis() as i32).max(1))?;
        drop(fds);
        if ready {
            drain(streams, probes, json, out)?;
        }
    }
    drain(streams, probes, json, out).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_align_in_columns() {
        let mut c = Columns::default();
        let mut lines = [
            "opensnoop pid=7 ret=3 comm=sh path=/etc/x".to_string(),
            "opensnoop pid=4242 ret=-2 comm=\"a b\\\" c\" path=/y".to_string(),
            "opensnoop pid=1 ret=0 comm=cat path=/z".to_string(),
        ];
        for l in &mut lines {
            let mut out = String::new();
            c.align_into(l, &mut out);
            *l = out;
        }
        assert_eq!(lines[0], "opensnoop pid=7 ret=3 comm=sh path=/etc/x");
        assert_eq!(
            lines[1],
            "opensnoop pid=4242 ret=-2 comm=\"a b\\\" c\" path=/y"
        );
        assert_eq!(lines[2], "opensnoop pid=1    ret=0  comm=cat       path=/z");
        // A very long token grows its column only up to MAX_COLUMN.
        let mut c = Columns::default();
        let mut long = String::new();
        c.align_into(&format!("p a={} b=1", "x".repeat(100)), &mut long);
        // ... and stays separated from the next token.
        assert_eq!(long, format!("p a={} b=1", "x".repeat(100)));
        let mut next = String::new();
        c.align_into("p a=1 b=2", &mut next);
        assert_eq!(next.find("b=2"), Some(2 + MAX_COLUMN + 1));
    }

    #[test]
    fn records_without_a_type_print_as_hex() {
        let probe = ProbeObject {
            name: "p".into(),
            path: "p.o".into(),
            data: Vec::new(),
            programs: Vec::new(),
            maps: Vec::new(),
            btf: None,
            btf_problem: None,
            core: false,
        };
        let mut line = String::new();
        format_event(
            &mut line,
            &probe,
            "events",
            None,
            &[0xde, 0xad, 0x01],
            false,
        );
        assert_eq!(line, "p ringbuf=events len=3 hex=dead01\n");
        format_event(&mut line, &probe, "events", None, &[0xde, 0xad, 0x01], true);
        assert_eq!(
            line,
            "{\"probe\":\"p\",\"map\":\"events\",\"len\":3,\"hex\":\"dead01\"}\n"
        );
    }
}
