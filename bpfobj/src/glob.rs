//! Shell-style globs (`*` any run, `?` one character), shared by the host (a project's `probes:`
//! patterns) and the loader (funccount's `kprobe/vfs_*`).

/// Whether `name` matches the glob `pattern`.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while let Some(&c) = n.get(ni) {
        match p.get(pi) {
            Some(&want) if want == '?' || want == c => {
                pi += 1;
                ni += 1;
            }
            Some('*') => {
                star = Some(pi);
                mark = ni;
                pi += 1;
            }
            _ => {
                let Some(s) = star else {
                    return false;
                };
                pi = s + 1;
                mark += 1;
                ni = mark;
            }
        }
    }
    p.iter().skip(pi).all(|c| *c == '*')
}
