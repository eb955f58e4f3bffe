#!/bin/busybox sh
# The default workload of `ebpf-pack try`, run in the guest while ebpf-run is attached. It does three
# things the bundled probes can see, and says what it did (with pids) on lines the host can read:
#   opensnoop  this shell opens a uniquely named file 1+OPENS times     -> "@@ebpf-pack: workload open ..."
#   execsnoop  a child execs a uniquely placed copy of busybox `true`  -> "@@ebpf-pack: workload exec ..."
#   syscount   SYNCS sync(2) calls (nothing else in the guest syncs)   -> "@@ebpf-pack: workload syscall ..."
M='@@ebpf-pack:'
OPENS=20
SYNCS=25
tag="ebpfpack-$$-$(cut -d' ' -f1 /proc/uptime | tr -d .)"
file="/tmp/$tag-open"
echo "$tag" > "$file"
i=0
while [ $i -lt $OPENS ]; do
  read -r line < "$file"
  i=$((i + 1))
done
# count: the reads plus the open that created the file.
echo "$M workload open pid=$$ path=$file count=$((OPENS + 1))"
mkdir -p "/tmp/$tag.d"
cp /bin/busybox "/tmp/$tag.d/true"
sh -c 'echo "$1 workload exec pid=$$ comm=true filename=$2"; exec "$2"' sh "$M" "/tmp/$tag.d/true"
i=0
while [ $i -lt $SYNCS ]; do
  sync
  i=$((i + 1))
done
echo "$M workload syscall name=sync count=$SYNCS"
