//! The object conventions read through BTF: BTF-defined `.maps` and ebpf-pack's ring buffer record
//! declarations (`EBPF_PACK_EVENT(map, type)` in `probes/include/ebpf_pack.h`).

use super::{Btf, Kind};

/// Name prefix of the global that names a ring buffer's record type (see `probes/include/ebpf_pack.h`).
pub const EVENT_VAR_PREFIX: &str = "__ebpf_pack_event_";
/// Name prefix of a ring buffer's lost-record counter, a one-slot per-CPU `u64` array bumped by the probe
/// when the ring buffer is full (`EP_RINGBUF_RESERVE` in `probes/include/ebpf_pack.h`).
pub const LOST_MAP_PREFIX: &str = "__ebpf_pack_lost_";
/// Name prefix of the perf-buffer map definition a ring buffer can switch to (`EBPF_PACK_EVENTS`).
pub const PERF_DEF_PREFIX: &str = "__ebpf_pack_perf_def_";
/// Name prefix of the `.rodata` switch that sends a ring buffer's records to its perf fallback.
pub const PERF_SWITCH_PREFIX: &str = "__ebpf_pack_perf_";
/// Name prefix of the per-CPU record slot of a ring buffer's perf fallback.
pub const HEAP_MAP_PREFIX: &str = "__ebpf_pack_heap_";
/// Decl tag of a map that only carries state between programs (`EP_SCRATCH` in ebpf_pack.h): not
/// the tool's output, so not dumped.
pub const SCRATCH_TAG: &str = "ebpf-pack:scratch";
/// Decl tag of a map whose counts start again after each interval dump (`EP_CLEAR` in ebpf_pack.h).
pub const CLEAR_TAG: &str = "ebpf-pack:clear";
/// Name prefix of every variable and map of the conventions, which are not the probe's own settings.
pub const CONVENTION_PREFIX: &str = "__ebpf_pack_";

/// How a ring buffer switches to its perf-buffer fallback (`EBPF_PACK_EVENTS` in ebpf_pack.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfFallback {
    /// The map's VAR in the `.maps` data section, whose type is switched.
    pub map_var: u32,
    /// The STRUCT with the perf-buffer definition, of the same size as the ring buffer's.
    pub perf_def: u32,
}

/// A map declared in a BTF-defined `.maps` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// Map name (the variable's name).
    pub name: String,
    /// `BPF_MAP_TYPE_*` value, when declared.
    pub map_type: Option<u32>,
    /// Key type id, when declared with `__type(key, ...)`.
    pub key: Option<u32>,
    /// Value type id, when declared with `__type(value, ...)`.
    pub value: Option<u32>,
    /// Pinning mode (`LIBBPF_PIN_BY_NAME` = 1), 0 when absent.
    pub pinning: u32,
    /// Declared `max_entries`.
    pub max_entries: Option<u32>,
    /// Declared `value_size` (`__uint(value_size, N)`), when the value has no type.
    pub value_size: Option<u32>,
}

impl Btf {
    /// The type id of the global variable `name`.
    pub fn var_type(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .find(|t| t.kind == Kind::Var && self.string(t.name_off) == name)
            .map(|t| t.size_or_type)
    }

    /// Whether the global variable (or map) `name` carries the BTF decl tag `tag`.
    pub fn var_has_tag(&self, name: &str, tag: &str) -> bool {
        self.types.iter().any(|t| {
            t.kind == Kind::DeclTag
                && self.string(t.name_off) == tag
                && self
                    .ty(t.size_or_type)
                    .is_some_and(|v| v.kind == Kind::Var && self.string(v.name_off) == name)
        })
    }

    /// The record type a ring buffer map carries, named by the `__ebpf_pack_event_<map>` convention.
    pub fn event_record_type(&self, map: &str) -> Option<u32> {
        let mut var = String::with_capacity(EVENT_VAR_PREFIX.len() + map.len());
        var.push_str(EVENT_VAR_PREFIX);
        var.push_str(map);
        let ptr = self.ty(self.resolve(self.var_type(&var)?))?;
        (ptr.kind == Kind::Ptr).then_some(ptr.size_or_type)
    }

    /// The perf-buffer fallback of ring buffer `map`, when the probe declares one whose definition has
    /// the ring buffer definition's size (the data section entry of the map keeps its size).
    pub fn perf_fallback(&self, map: &str) -> Option<PerfFallback> {
        let def_name = format!("{PERF_DEF_PREFIX}{map}");
        let perf_def = (1..self.types.len() as u32).find(|&id| {
            self.ty(id)
                .is_some_and(|t| t.kind == Kind::Struct && self.string(t.name_off) == def_name)
        })?;
        let sec = self
            .types
            .iter()
            .find(|t| t.kind == Kind::Datasec && self.string(t.name_off) == ".maps")?;
        let map_var = self.members(sec).iter().map(|e| e.ty).find(|&id| {
            self.ty(id)
                .is_some_and(|v| v.kind == Kind::Var && self.string(v.name_off) == map)
        })?;
        let ring_def = self.resolve(self.ty(map_var)?.size_or_type);
        (self.size_of(ring_def)? == self.size_of(perf_def)?)
            .then_some(PerfFallback { map_var, perf_def })
    }

    /// The maps declared in the BTF-defined `.maps` section, in declaration order.
    pub fn map_defs(&self) -> Vec<MapDef> {
        let Some(sec) = self
            .types
            .iter()
            .find(|t| t.kind == Kind::Datasec && self.string(t.name_off) == ".maps")
        else {
            return Vec::new();
        };
        let mut defs = Vec::new();
        for entry in self.members(sec) {
            let Some(var) = self.ty(entry.ty).filter(|v| v.kind == Kind::Var) else {
                continue;
            };
            let mut def = MapDef {
                name: self.string(var.name_off).to_owned(),
                map_type: None,
                key: None,
                value: None,
                pinning: 0,
                max_entries: None,
                value_size: None,
            };
            let Some(body) = self.ty(self.resolve(var.size_or_type)) else {
                continue;
            };
            for m in self.members(body) {
                // Every field is a pointer: `__uint(n, v)` points to `int[v]`, `__type(n, T)` points to T.
                let Some(ptr) = self.ty(self.resolve(m.ty)).filter(|p| p.kind == Kind::Ptr) else {
                    continue;
                };
                let pointee = ptr.size_or_type;
                let count = match self.ty(self.resolve(pointee)).map(|t| t.kind) {
                    Some(Kind::Array { nelems, .. }) => Some(nelems),
                    _ => None,
                };
                match self.string(m.name_off) {
                    "type" => def.map_type = count,
                    "key" => def.key = Some(pointee),
                    "value" => def.value = Some(pointee),
                    "pinning" => def.pinning = count.unwrap_or(0),
                    "max_entries" => def.max_entries = count,
                    "value_size" => def.value_size = count,
                    _ => {}
                }
            }
            defs.push(def);
        }
        defs
    }
}
