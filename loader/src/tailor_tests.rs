//! The tailored kernel BTF against the whole one: every CO-RE relocation of real objects (the bundle's
//! probes and a probe exercising each relocation kind) must come out the same, instruction for
//! instruction, when aya relocates against this kernel's BTF cut down by [`crate::btf::tailor`]. Needs
//! clang-19 and /sys/kernel/btf/vmlinux (no privilege: nothing is loaded); skipped loudly without them
//! unless `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use aya::{Btf, Endianness};
use aya_obj::Object;

use crate::btf::{self, RawBtf};
use crate::probe::ProbeObject;

/// Every CO-RE relocation kind the tailoring serves, on kernel types with anonymous members,
/// bitfields, arrays, flavors and enums.
const KINDS_C: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct___gone { int no_such_member_here; };
struct sk_buff___own { __u8 pkt_type:3; } __attribute__((preserve_access_index));

__u64 out[16];

SEC("raw_tp/sys_enter")
int kinds(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct sk_buff *skb = (void *)t;
	struct task_struct___gone *g = (void *)t;

	out[0] = bpf_core_field_offset(t->comm);
	out[1] = bpf_core_field_size(t->comm);
	out[2] = bpf_core_field_exists(t->real_parent);
	out[3] = bpf_core_field_exists(g->no_such_member_here);
	out[4] = __builtin_preserve_field_info(t->pid, 3 /* BPF_FIELD_SIGNED */);
	out[5] = BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);
	out[6] = bpf_core_type_exists(struct task_struct);
	out[7] = bpf_core_type_size(struct mm_struct);
	out[8] = bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_map_lookup_elem);
	out[9] = bpf_core_enum_value(enum bpf_func_id, BPF_FUNC_ringbuf_output);
	out[10] = bpf_core_field_offset(t->signal->rlim[2].rlim_max);
	out[11] = bpf_core_field_offset(skb->len);
	out[12] = BPF_CORE_READ(t, mm, arg_start);
	out[13] = bpf_core_type_id_local(struct task_struct);
	out[14] = bpf_core_field_size(t->thread_info);
	out[15] = bpf_core_type_exists(struct task_struct___gone);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Reports a missing requirement: a failure under CI, a loud skip elsewhere.
fn missing(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why} (required under CI=true)"
    );
    eprintln!("SKIPPED tailored BTF tests: {why}");
}

/// Compiles `source` (a file in `dir`) for this host's BPF byte order with the repo's x86_64 headers.
fn compile(dir: &Path, source: &Path) -> Option<Vec<u8>> {
    let object = dir.join(format!(
        "{}.o",
        source.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
    ));
    let include = repo().join("probes/include");
    let out = Command::new("clang-19")
        .args(["-g", "-O2", "-target", "bpfel", "-D__TARGET_ARCH_x86"])
        .arg("-I")
        .arg(&include)
        .arg("-I")
        .arg(include.join("x86_64"))
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(&object)
        .output();
    match out {
        Ok(o) if o.status.success() => std::fs::read(&object).ok(),
        Ok(o) => panic!(
            "clang-19 {}: {}",
            source.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            missing(&format!("clang-19: {e}"));
            None
        }
    }
}

/// One instruction: opcode, destination and source registers, offset, immediate.
type Insn = (u8, u8, u8, i16, i32);

/// Every function's instructions after aya relocated `data` against `target`.
fn relocated(data: &[u8], target: &Btf) -> Vec<(String, Vec<Insn>)> {
    let mut obj = Object::parse(data).expect("aya parses the object");
    obj.relocate_btf(target).expect("aya relocates");
    obj.functions
        .values()
        .map(|f| {
            let insns = f
                .instructions
                .iter()
                .map(|i| (i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
                .collect();
            (f.name.clone(), insns)
        })
        .collect()
}

#[test]
fn tailored_kernel_btf_relocates_like_the_whole_one() {
    let Ok(kernel_data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        missing("this kernel has no /sys/kernel/btf/vmlinux");
        return;
    };
    let dir = std::env::temp_dir().join(format!("ebpf-run-tailor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let kinds = dir.join("kinds.bpf.c");
    std::fs::write(&kinds, KINDS_C).expect("write C");
    let mut sources = vec![kinds];
    for probe in ["opensnoop", "execsnoop", "syscount"] {
        sources.push(repo().join(format!("probes/{probe}.bpf.c")));
    }
    let mut objects = Vec::new();
    for source in &sources {
        let Some(data) = compile(&dir, source) else {
            return;
        };
        let name = crate::probe::probe_name(source);
        objects.push(ProbeObject::parse(name, source.clone(), data).expect("probe parses"));
    }
    let relos: Vec<Vec<btf::CoreRelo>> = objects
        .iter()
        .map(|o| o.core_relos().expect("relocations"))
        .collect();
    assert!(
        relos[0].len() >= 16,
        "the kinds probe has {} relocations",
        relos[0].len()
    );

    let kernel = RawBtf::index(&kernel_data).expect("kernel BTF");
    let whole = Btf::parse(&kernel_data, Endianness::default()).expect("aya parses the kernel BTF");
    // One tailored BTF for all objects, as a run makes it, and one per object.
    let local: Vec<(&btf::Btf, &[btf::CoreRelo])> = objects
        .iter()
        .zip(&relos)
        .map(|(o, r)| (o.btf.as_ref().expect("object BTF"), r.as_slice()))
        .collect();
    let all = btf::tailor(&kernel, &local)
        .expect("tailoring")
        .expect("no relocation needs the whole BTF");
    assert!(
        all.len() * 20 < kernel_data.len(),
        "tailored BTF is {} of {} bytes",
        all.len(),
        kernel_data.len()
    );
    let all = Btf::parse(&all, Endianness::default()).expect("aya parses the tailored BTF");
    for (i, o) in objects.iter().enumerate() {
        let alone = btf::tailor(&kernel, &local[i..=i])
            .expect("tailoring")
            .expect("tailorable");
        let alone = Btf::parse(&alone, Endianness::default()).expect("aya parses it");
        let want = relocated(&o.data, &whole);
        assert_eq!(relocated(&o.data, &all), want, "{}: together", o.name);
        assert_eq!(relocated(&o.data, &alone), want, "{}: alone", o.name);
    }

    // bpf_core_type_id_kernel() needs the kernel's own type ids: refused, the run uses the whole BTF.
    let ids = dir.join("ids.bpf.c");
    std::fs::write(
        &ids,
        KINDS_C.replace(
            "bpf_core_type_id_local(struct task_struct)",
            "bpf_core_type_id_kernel(struct task_struct)",
        ),
    )
    .expect("write C");
    let Some(data) = compile(&dir, &ids) else {
        return;
    };
    let o = ProbeObject::parse("ids".into(), ids, data).expect("parses");
    let r = o.core_relos().expect("relocations");
    let refused =
        btf::tailor(&kernel, &[(o.btf.as_ref().expect("BTF"), r.as_slice())]).expect("tailoring");
    assert!(
        refused
            .as_ref()
            .is_err_and(|why| why.0.contains("type ids")),
        "{:?}",
        refused.map(|b| b.len())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
