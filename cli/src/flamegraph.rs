//! Flame graphs of folded stacks (`comm;outer;...;inner COUNT`, as `profile` prints them): one
//! self-contained SVG, laid out as Brendan Gregg's flamegraph.pl does — the root at the bottom, each
//! frame as wide as its share of the samples, callers below callees, siblings in name order so equal
//! stacks always line up — with a tooltip (`<title>`) per frame and no script, so it opens in any
//! browser or image viewer. Kernel frames (`_[k]`) are drawn in orange, user frames in the warm reds
//! and yellows of flamegraph.pl, each colour derived from the name so a function keeps its colour.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Width of the image in pixels.
const WIDTH: f64 = 1200.0;
/// Height of one frame.
const FRAME_HEIGHT: f64 = 16.0;
/// Text size of frame labels.
const FONT_SIZE: f64 = 12.0;
/// Average glyph width per point of font size, as flamegraph.pl estimates it.
const FONT_WIDTH: f64 = 0.59;
/// Frames narrower than this many pixels are left out.
const MIN_WIDTH: f64 = 0.1;
/// Space above the frames (title) and below them (the details line).
const TOP: f64 = 40.0;
const BOTTOM: f64 = 24.0;
/// Side margins.
const PAD: f64 = 10.0;

/// A call-tree node: samples that passed through it and its callees by name.
#[derive(Debug, Default)]
struct Node {
    total: u64,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn depth(&self) -> usize {
        self.children
            .values()
            .map(|c| c.depth() + 1)
            .max()
            .unwrap_or(0)
    }
}

/// A flame graph's input: folded stacks and their sample counts.
#[derive(Debug, Default)]
pub struct FlameGraph {
    root: Node,
}

impl FlameGraph {
    /// An empty graph.
    pub fn new() -> FlameGraph {
        FlameGraph::default()
    }

    /// Adds `count` samples of the folded stack `stack` (frames joined by `;`, outermost first).
    pub fn add(&mut self, stack: &str, count: u64) {
        if count == 0 {
            return;
        }
        self.root.total += count;
        let mut node = &mut self.root;
        for frame in stack.split(';').filter(|f| !f.is_empty()) {
            node = node.children.entry(frame.to_owned()).or_default();
            node.total += count;
        }
    }

    /// Adds every line of a folded-stacks text (`STACK COUNT`); lines that are not are skipped.
    pub fn add_folded(&mut self, text: &str) {
        for line in text.lines() {
            if let Some((stack, count)) = line.trim_end().rsplit_once(' ')
                && let Ok(n) = count.parse()
            {
                self.add(stack, n);
            }
        }
    }

    /// Samples in the graph.
    pub fn samples(&self) -> u64 {
        self.root.total
    }

    /// The SVG document, titled `title`.
    pub fn svg(&self, title: &str) -> String {
        let depth = self.root.depth() + 1;
        let height = TOP + BOTTOM + depth as f64 * FRAME_HEIGHT;
        let mut out = String::new();
        let _ = write!(
            out,
            "<?xml version=\"1.0\" standalone=\"no\"?>\n\
             <svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {WIDTH} {height}\" font-family=\"Verdana, 'DejaVu Sans', sans-serif\" font-size=\"{FONT_SIZE}\">\n\
             <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#f8f8f0\"/>\n\
             <text x=\"{x}\" y=\"24\" font-size=\"17\" text-anchor=\"middle\">{t}</text>\n\
             <text x=\"{PAD}\" y=\"{d}\" fill=\"#555\">{n} samples; width = share of samples, callers below callees; kernel frames orange (_[k])</text>\n",
            x = WIDTH / 2.0,
            t = escape(title),
            d = height - 8.0,
            n = self.root.total,
        );
        if self.root.total > 0 {
            let scale = (WIDTH - 2.0 * PAD) / self.root.total as f64;
            let base = height - BOTTOM - FRAME_HEIGHT;
            frame(
                &mut out,
                "all",
                &self.root,
                PAD,
                base,
                scale,
                self.root.total,
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Draws `node` at `(x, y)` and its callees above it.
fn frame(out: &mut String, name: &str, node: &Node, x: f64, y: f64, scale: f64, all: u64) {
    let width = node.total as f64 * scale;
    if width < MIN_WIDTH {
        return;
    }
    let share = node.total as f64 * 100.0 / all as f64;
    let (r, g, b) = color(name);
    let _ = write!(
        out,
        "<g><title>{t} ({n} samples, {share:.2}%)</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
         height=\"{h:.1}\" fill=\"rgb({r},{g},{b})\" rx=\"2\" ry=\"2\"/>",
        t = escape(name),
        n = node.total,
        w = width,
        h = FRAME_HEIGHT - 1.0,
    );
    // As many characters as fit, `..` marking a cut, nothing when not even three fit.
    let fits = ((width - 6.0) / (FONT_SIZE * FONT_WIDTH)) as usize;
    if fits >= 3 {
        let label: String = if name.chars().count() <= fits {
            name.to_owned()
        } else {
            name.chars().take(fits - 2).chain("..".chars()).collect()
        };
        let _ = write!(
            out,
            "<text x=\"{tx:.1}\" y=\"{ty:.1}\">{l}</text>",
            tx = x + 3.0,
            ty = y + FRAME_HEIGHT - 4.5,
            l = escape(&label),
        );
    }
    out.push_str("</g>\n");
    let mut at = x;
    for (child, c) in &node.children {
        frame(out, child, c, at, y - FRAME_HEIGHT, scale, all);
        at += c.total as f64 * scale;
    }
}

/// A frame's colour: orange shades for kernel frames, flamegraph.pl's "hot" range for the others,
/// chosen by a hash of the name (FNV-1a), so the same function is the same colour in every graph.
fn color(name: &str) -> (u8, u8, u8) {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let v1 = (hash & 0xff) as f64 / 255.0;
    let v2 = ((hash >> 8) & 0xff) as f64 / 255.0;
    if name.ends_with("_[k]") || name == "all" {
        (
            (220.0 + 30.0 * v1) as u8,
            (110.0 + 50.0 * v2) as u8,
            (30.0 + 30.0 * v1) as u8,
        )
    } else {
        (
            (205.0 + 50.0 * v2) as u8,
            (230.0 * v1) as u8,
            (55.0 * v2) as u8,
        )
    }
}

/// XML text escaping.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_stacks_merge_by_prefix() {
        let mut g = FlameGraph::new();
        g.add_folded(
            "spin;main;spin_outer;spin_inner 60\nspin;main;loop;getppid;do_syscall_64_[k] 30\n\
             spin;main;spin_outer;spin_inner 10\nnot a stack line\n",
        );
        assert_eq!(g.samples(), 100);
        let spin = &g.root.children["spin"];
        assert_eq!(spin.children["main"].children["spin_outer"].total, 70);
        assert_eq!(g.root.depth(), 5);
    }

    #[test]
    fn svg_layout() {
        let mut g = FlameGraph::new();
        g.add("spin;main;spin_outer;spin_inner", 70);
        g.add("spin;main;syscall_loop;getppid;__x64_sys_getppid_[k]", 25);
        g.add(
            "spin;main;a_function_with_a_name_far_too_long_for_its_tiny_frame_<T>",
            5,
        );
        insta::assert_snapshot!(g.svg("profile of spin <on> board"));
    }

    #[test]
    fn an_empty_graph_is_still_a_document() {
        let svg = FlameGraph::new().svg("nothing sampled");
        assert!(svg.contains("0 samples") && svg.ends_with("</svg>\n"));
    }
}
