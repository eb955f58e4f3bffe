//! Kernel configs as boards keep them (`/proc/config.gz`, `/boot/config-R`, `--kconfig FILE`): the
//! bounded gzip inflate, the text, the option parser, and the kernel release parser.
#![no_main]

use ebpf_pack_object::{config_file, kconfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = config_file::config_text(data.to_vec()) {
        let options = kconfig::parse_config(&text);
        let _ = kconfig::lookup(&options, "CONFIG_BPF_SYSCALL");
        let _ = kconfig::kernel_version_code(text.lines().next().unwrap_or(""));
    }
});
