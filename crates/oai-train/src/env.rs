//! The compute environment a run is bound to. Bits are only promised equal between machines of
//! one compute class running one kernel version; both are written into the log header and
//! checked before any replay or resume.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::Kernels;
use crate::{Error, Result};

/// Where and how a run computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeEnv {
    /// The class bits are promised within. Verifiable kernels: instruction-set level and device,
    /// e.g. `x86_64-v3/cpu`. Native kernels add what candle's bits also depend on, e.g.
    /// `x86_64-avx2-fma/cpu/l1d-48K-12w`; on CUDA (feature `cuda`) the GPU, its architecture and
    /// multiprocessor count, the driver and cuBLAS, e.g.
    /// `cuda/NVIDIA H100 80GB HBM3/sm90x132/driver-13000/cublas-13.1.0`.
    pub class: String,
    /// The kernels and their version ([`Kernels::version`]).
    pub kernels: String,
    /// `cpu`, `cuda` or `metal`.
    pub device: String,
    /// Target architecture (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Native kernels: CPU features that change their results (AVX, AVX2, FMA, AVX-512, NEON),
    /// sorted. Empty on CUDA and for verifiable kernels, whose bits depend on the class alone,
    /// so that every machine of a class writes the same header (and the same log).
    pub features: Vec<String>,
    /// Native kernels: the level-1 data cache as `size-ways` (gemm sizes its k-blocks from it),
    /// when known. `None` on CUDA and for verifiable kernels.
    pub l1d: Option<String>,
}

impl ComputeEnv {
    /// The environment of this process on `device` with `kernels`.
    pub fn detect(device: &Device, kernels: Kernels) -> Self {
        let arch = std::env::consts::ARCH.to_string();
        let device_name = match device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Metal(_) => "metal",
        };
        let (class, features, l1d) = match (kernels, device) {
            (Kernels::Verifiable, _) => {
                (format!("{}/{device_name}", isa_level()), Vec::new(), None)
            }
            #[cfg(feature = "cuda")]
            (Kernels::Native, Device::Cuda(gpu)) => (cuda_class(gpu), Vec::new(), None),
            (Kernels::Native, _) => {
                let features = cpu_features();
                let l1d = l1d_geometry();
                let simd = features
                    .iter()
                    .filter(|f| f.as_str() != "avx")
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("-");
                let simd = if simd.is_empty() {
                    "baseline".into()
                } else {
                    simd
                };
                let class = format!(
                    "{arch}-{simd}/{device_name}/l1d-{}",
                    l1d.as_deref().unwrap_or("unknown")
                );
                (class, features, l1d)
            }
        };
        Self {
            class,
            kernels: kernels.version().to_string(),
            device: device_name.to_string(),
            arch,
            features,
            l1d,
        }
    }

    /// `Ok` when a log written in `self` can be judged bit for bit in `here`.
    pub fn check_compatible(&self, here: &ComputeEnv) -> Result<()> {
        if self.class.is_empty() {
            Err(Error::MissingComputeClass)
        } else if self.kernels != here.kernels {
            Err(Error::KernelMismatch {
                log: self.kernels.clone(),
                here: here.kernels.clone(),
            })
        } else if self.class != here.class {
            Err(Error::IncompatibleCompute {
                log: self.class.clone(),
                here: here.class.clone(),
            })
        } else {
            Ok(())
        }
    }
}

/// The instruction-set level verifiable bits depend on: `x86_64-v3` (AVX2 + FMA and the rest of
/// the x86-64-v3 set; AVX-512 machines give the same bits), `x86_64-v2`, `x86_64-v1`,
/// `aarch64-neon`, or the bare architecture.
pub fn isa_level() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let v2 = has!("sse3")
            && has!("ssse3")
            && has!("sse4.1")
            && has!("sse4.2")
            && has!("popcnt")
            && has!("cmpxchg16b");
        let v3 = v2
            && has!("avx")
            && has!("avx2")
            && has!("bmi1")
            && has!("bmi2")
            && has!("f16c")
            && has!("fma")
            && has!("lzcnt")
            && has!("movbe")
            && has!("xsave");
        return match (v2, v3) {
            (_, true) => "x86_64-v3",
            (true, false) => "x86_64-v2",
            _ => "x86_64-v1",
        }
        .to_string();
    }
    #[cfg(target_arch = "aarch64")]
    {
        return "aarch64-neon".to_string();
    }
    #[allow(unreachable_code)]
    std::env::consts::ARCH.to_string()
}

/// The class of native kernels on an NVIDIA GPU: everything its bits depend on, e.g.
/// `cuda/NVIDIA H100 80GB HBM3/sm90x132/driver-13000/cublas-13.1.0`. cuBLAS promises the same
/// bits only for one architecture, one multiprocessor count and one cuBLAS version; candle's
/// kernels are compiled to PTX, which the driver compiles to machine code. A part that cannot be
/// read is `unknown`.
#[cfg(feature = "cuda")]
fn cuda_class(gpu: &candle_core::CudaDevice) -> String {
    use candle_core::cuda::cudarc::{cublas, driver};
    let stream = gpu.cuda_stream();
    let ctx = stream.context();
    let unknown = || "unknown".to_string();
    let name = ctx.name().unwrap_or_else(|_| unknown());
    let cc = ctx
        .compute_capability()
        .map(|(major, minor)| format!("{major}{minor}"))
        .unwrap_or_else(|_| unknown());
    let sms = ctx
        .attribute(driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| unknown());
    let mut drv = 0;
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    // SAFETY: each call writes one `c_int` through a pointer to a live local and reads nothing
    // else; the libraries are loaded already (candle created the context and a cuBLAS handle).
    #[allow(unsafe_code)]
    let ok = unsafe {
        use cublas::sys::libraryPropertyType as Prop;
        driver::sys::cuDriverGetVersion(&mut drv) == driver::sys::CUresult::CUDA_SUCCESS
            && [
                (Prop::MAJOR_VERSION, &mut major),
                (Prop::MINOR_VERSION, &mut minor),
                (Prop::PATCH_LEVEL, &mut patch),
            ]
            .into_iter()
            .all(|(p, v)| {
                cublas::sys::cublasGetProperty(p, v)
                    == cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS
            })
    };
    let versions = if ok {
        format!("driver-{drv}/cublas-{major}.{minor}.{patch}")
    } else {
        format!("driver-{}/cublas-{}", unknown(), unknown())
    };
    format!("cuda/{name}/sm{cc}x{sms}/{versions}")
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
        let a = ComputeEnv::detect(&Device::Cpu, Kernels::Verifiable);
        let b = ComputeEnv::detect(&Device::Cpu, Kernels::Verifiable);
        assert_eq!(a, b);
        a.check_compatible(&b).unwrap();
        assert_eq!(a.class, format!("{}/cpu", isa_level()));
        let native = ComputeEnv::detect(&Device::Cpu, Kernels::Native);
        assert!(native.class.contains("/cpu/l1d-"), "{}", native.class);
        let mut other = a.clone();
        other.class = "aarch64-neon/cpu".into();
        assert!(matches!(
            other.check_compatible(&a),
            Err(Error::IncompatibleCompute { .. })
        ));
        assert!(matches!(
            native.check_compatible(&a),
            Err(Error::KernelMismatch { .. })
        ));
        other.class.clear();
        assert!(matches!(
            other.check_compatible(&a),
            Err(Error::MissingComputeClass)
        ));
    }
}
