//! Log2 histograms as text bars, the way BCC's tools (libbpf-tools' `print_log2_hist`) and ebpf-run's
//! own text mode print them: a `value : count distribution` header, then one row per slot from 0 to the
//! highest non-empty one, `low -> high : count |****  |`. Slot `i` counts `2^i ..= 2^(i+1)-1`, slot 0
//! also 0. A port of the loader's `write_hist` (loader/src/dump.rs): same widths, same 40-star bars.

/// Stars of the fullest slot's bar.
const STARS: u64 = 40;

pub use ebpf_pack_object::decode::hist_unit_label as unit_label;

/// The lines of a log2 histogram of `counts` under a header naming `unit`; `(empty)` when every slot
/// is zero.
pub fn log2_hist(counts: &[u64], unit: &str) -> Vec<String> {
    let Some(last) = counts.iter().rposition(|&c| c != 0) else {
        return vec!["    (empty)".to_string()];
    };
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let (pad, w, hw) = if last <= 32 {
        (5, 10, 19)
    } else {
        (15, 20, 29)
    };
    let mut out = vec![format!("{:pad$}{unit:<hw$} : count    distribution", "")];
    for (i, &c) in counts.iter().enumerate().take(last + 1) {
        let high = if i >= 63 {
            u64::MAX
        } else {
            (1u64 << (i + 1)) - 1
        };
        let low = if i == 0 { 0 } else { 1u64 << i.min(63) };
        let stars = (u128::from(c) * u128::from(STARS) / u128::from(max)) as usize;
        out.push(format!(
            "{low:>w$} -> {high:<w$} : {c:<8} |{:<40}|",
            "*".repeat(stars)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_up_to_the_last_busy_slot_with_bars_scaled_to_the_fullest() {
        let lines = log2_hist(&[1, 0, 4, 2, 0, 0], "usecs");
        assert_eq!(
            lines,
            [
                "     usecs               : count    distribution",
                "         0 -> 1          : 1        |**********                              |",
                "         2 -> 3          : 0        |                                        |",
                "         4 -> 7          : 4        |****************************************|",
                "         8 -> 15         : 2        |********************                    |",
            ]
        );
        assert_eq!(log2_hist(&[0, 0], "value"), ["    (empty)"]);
    }

    #[test]
    fn wide_histograms_widen_the_columns_and_slot_63_ends_at_the_top() {
        let mut counts = vec![0u64; 64];
        counts[63] = 3;
        let lines = log2_hist(&counts, "value");
        assert_eq!(lines.len(), 65);
        assert!(lines[0].starts_with(&" ".repeat(15)));
        assert!(lines[64].contains("9223372036854775808 -> 18446744073709551615"));
    }

    #[test]
    fn units_come_from_the_map_name() {
        assert_eq!(unit_label("lat_us"), "usecs");
        assert_eq!(unit_label("nsecs"), "nsecs");
        assert_eq!(unit_label("dist_ms"), "msecs");
        assert_eq!(unit_label("ret_hist"), "value");
        assert_eq!(unit_label("bus"), "value");
    }
}
