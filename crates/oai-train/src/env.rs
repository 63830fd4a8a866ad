//! The compute environment a run is bound to. Bits are only promised equal between machines of
//! one compute class; the class is written into the log header and checked before any replay.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The tensor library and kernels whose summation orders the bits depend on.
pub const KERNELS: &str = "candle-0.11.1/gemm-0.19";

/// Where and how a run computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeEnv {
    /// The class bits are promised within, e.g. `x86_64-avx2-fma/cpu/l1d-48K-12w/candle-0.11.1/gemm-0.19`.
    pub class: String,
    /// `cpu`, `cuda:N` or `metal:N`.
    pub device: String,
    /// Target architecture (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// CPU features that change floating-point results (AVX, AVX2, FMA, AVX-512, NEON), sorted.
    pub features: Vec<String>,
    /// Level-1 data cache as `size/ways` (gemm sizes its blocks from it), when known.
    pub l1d: Option<String>,
    /// Tensor kernels ([`KERNELS`]).
    pub kernels: String,
}

impl ComputeEnv {
    /// The environment of this process on `device`.
    pub fn detect(device: &Device) -> Self {
        let arch = std::env::consts::ARCH.to_string();
        let features = cpu_features();
        let device_name = match device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(_) => "cuda".to_string(),
            Device::Metal(_) => "metal".to_string(),
        };
        let l1d = l1d_geometry();
        let simd = if features.is_empty() {
            "baseline".to_string()
        } else {
            features
                .iter()
                .filter(|f| f.as_str() != "avx" && f.as_str() != "avx512f")
                .cloned()
                .collect::<Vec<_>>()
                .join("-")
        };
        let class = format!(
            "{arch}-{simd}/{device_name}/l1d-{}/{KERNELS}",
            l1d.as_deref().unwrap_or("unknown")
        );
        Self {
            class,
            device: device_name,
            arch,
            features,
            l1d,
            kernels: KERNELS.to_string(),
        }
    }

    /// `Ok` when a log written in `self` can be judged bit for bit in `here`.
    pub fn check_compatible(&self, here: &ComputeEnv) -> Result<()> {
        if self.class == here.class {
            Ok(())
        } else {
            Err(Error::IncompatibleCompute {
                log: self.class.clone(),
                here: here.class.clone(),
            })
        }
    }
}

fn cpu_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut f: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            f.push("avx");
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            f.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            f.push("fma");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            f.push("avx512f");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            f.push("neon");
        }
    }
    f.sort_unstable();
    f.into_iter().map(String::from).collect()
}

/// `"48K-12w"` from sysfs (Linux), the geometry gemm reads to size its k-blocks.
fn l1d_geometry() -> Option<String> {
    let base = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    for i in 0..8 {
        let dir = base.join(format!("index{i}"));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let (Some(level), Some(kind)) = (read("level"), read("type")) else {
            continue;
        };
        if level.trim() == "1" && kind.trim() == "Data" {
            let size = read("size")?;
            let ways = read("ways_of_associativity")?;
            return Some(format!("{}-{}w", size.trim(), ways.trim()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_is_stable_and_self_compatible() {
        let a = ComputeEnv::detect(&Device::Cpu);
        let b = ComputeEnv::detect(&Device::Cpu);
        assert_eq!(a, b);
        a.check_compatible(&b).unwrap();
        assert!(a.class.contains("/cpu/"), "{}", a.class);
        let mut other = a.clone();
        other.class = "aarch64-neon/cpu/l1d-64K-4w/x".into();
        assert!(matches!(
            other.check_compatible(&a),
            Err(Error::IncompatibleCompute { .. })
        ));
    }
}
