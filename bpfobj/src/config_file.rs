//! The text of a kernel config file as boards keep it: plain (`/boot/config-R`) or gzip
//! (`/proc/config.gz`), inflated with a bound so a damaged or hostile file cannot exhaust memory.

/// Largest kernel config inflated (real ones are 100-300 KB).
pub const MAX_CONFIG_BYTES: usize = 16 << 20;

/// The text of a config file's bytes, inflated first when they are gzip; the error says what is wrong.
pub fn config_text(data: Vec<u8>) -> Result<String, String> {
    let text = if data.starts_with(&[0x1f, 0x8b]) {
        gunzip(&data)?
    } else {
        data
    };
    String::from_utf8(text).map_err(|_| "not a text file".to_owned())
}

/// Inflates a gzip file (one member) of at most [`MAX_CONFIG_BYTES`].
fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let bad = || "a damaged gzip file".to_owned();
    let (Some(&8), Some(&flags)) = (data.get(2), data.get(3)) else {
        return Err(bad());
    };
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len: &[u8; 2] = data
            .get(at..)
            .and_then(|rest| rest.first_chunk())
            .ok_or_else(bad)?;
        at += 2 + usize::from(u16::from_le_bytes(*len));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = data.get(at..).and_then(|d| d.iter().position(|&b| b == 0));
            at += end.ok_or_else(bad)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    let stream = data.get(at..).ok_or_else(bad)?;
    miniz_oxide::inflate::decompress_to_vec_with_limit(stream, MAX_CONFIG_BYTES).map_err(|e| {
        if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput {
            format!("inflates past {MAX_CONFIG_BYTES} bytes")
        } else {
            bad()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_configs_inflate_and_damaged_ones_are_refused() {
        let dir = std::env::temp_dir().join(format!("bpfobj-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let plain = dir.join("config");
        std::fs::write(&plain, "CONFIG_HZ=250\n").expect("write");
        let status = std::process::Command::new("gzip")
            .args(["-k", "-f", "-n"])
            .arg(&plain)
            .status()
            .expect("gzip runs");
        assert!(status.success());
        let data = std::fs::read(dir.join("config.gz")).expect("read");
        assert_eq!(
            config_text(b"CONFIG_HZ=250\n".to_vec()).as_deref(),
            Ok("CONFIG_HZ=250\n")
        );
        assert_eq!(config_text(data.clone()).as_deref(), Ok("CONFIG_HZ=250\n"));
        for len in 0..data.len() - 8 {
            assert!(gunzip(&data[..len]).is_err(), "truncated at {len}");
        }
        assert!(config_text(vec![0xff, 0xfe]).is_err_and(|e| e == "not a text file"));
        // A bomb: 64 MiB of zeros compresses to ~64 KB; refused at the limit.
        let zeros = dir.join("zeros");
        std::fs::write(&zeros, vec![0u8; 64 << 20]).expect("write");
        let status = std::process::Command::new("gzip")
            .args(["-f", "-n"])
            .arg(&zeros)
            .status()
            .expect("gzip runs");
        assert!(status.success());
        let bomb = std::fs::read(dir.join("zeros.gz")).expect("read");
        assert!(gunzip(&bomb).is_err_and(|e| e.contains("inflates past")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
