//! Per-kernel benches of oai-kernels: each op on the shapes the bench workloads give it (the
//! 784-1024-1024-10 MLP with batch 64, the small transformer LM), forward alone and forward
//! with its backward pass, with the verifiable kernels and with plain candle side by side, so
//! that tuning a kernel is measured on that kernel, not only by whole steps.
//!
//! Run: `cargo bench -p oai-benches --bench kernels` (add a filter, e.g. `-- gelu`). The
//! quantised matmuls run last (`-- Q4_1`).

use criterion::{BenchmarkId, Criterion};
use oai_kernels::testing::seeded;
use oai_kernels::Kernels;
use oai_train::candle::{Device, Tensor, Var};

/// One op of the kernels on its inputs.
type Op = fn(Kernels, &[Tensor]) -> oai_kernels::Result<Tensor>;

/// The ops and the shapes of their inputs.
fn cases() -> Vec<(&'static str, Vec<Vec<usize>>, Op)> {
    vec![
        (
            "matmul 64x784 @ 784x1024",
            vec![vec![64, 784], vec![784, 1024]],
            |k, x| k.matmul(&x[0], &x[1]),
        ),
        (
            "matmul_t 1024x128 @ (384x128)^T",
            vec![vec![1024, 128], vec![384, 128]],
            |k, x| k.matmul_t(&x[0], &x[1]),
        ),
        (
            "add_rows 64x1024 + 1024",
            vec![vec![64, 1024], vec![1024]],
            |k, x| k.add_rows(&x[0], &x[1]),
        ),
        ("gelu 1024x512", vec![vec![1024, 512]], |k, x| k.gelu(&x[0])),
        ("tanh 64x1024", vec![vec![64, 1024]], |k, x| k.tanh(&x[0])),
        (
            "layer_norm 1024x128",
            vec![vec![1024, 128], vec![128], vec![128]],
            |k, x| k.layer_norm(&x[0], &x[1], &x[2]),
        ),
        (
            "attention_weights 16x4x64x64",
            vec![vec![16, 4, 64, 64], vec![64, 64]],
            |k, x| k.attention_weights(&x[0], 0.125, &x[1]),
        ),
        ("cross_entropy 1024x256", vec![vec![1024, 256]], |k, x| {
            let n = x[0].dim(0)?;
            let t: Vec<u32> = (0..n as u32).map(|i| i * 7 % 256).collect();
            k.cross_entropy(&x[0], &Tensor::from_vec(t, n, &Device::Cpu)?)
        }),
    ]
}

fn bench(c: &mut Criterion) {
    for (name, shapes, op) in cases() {
        let vars: Vec<Var> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Var::from_tensor(&seeded(s, i as u64 + 1, 2.0)).expect("a var"))
            .collect();
        let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let mut group = c.benchmark_group(name);
        group.sample_size(20);
        for k in [Kernels::Verifiable, Kernels::Native] {
            let label = format!("{k:?}").to_lowercase();
            group.bench_function(BenchmarkId::new("forward", &label), |b| {
                b.iter(|| op(k, &inputs).expect("forward"))
            });
            group.bench_function(BenchmarkId::new("forward+backward", &label), |b| {
                b.iter(|| {
                    let y = op(k, &inputs).expect("forward");
                    y.sum_all().and_then(|s| s.backward()).expect("backward")
                })
            });
        }
        group.finish();
    }
}

/// `x @ W^T` of one row (decoding) and of 32 rows (a prompt) against SmolLM2's MLP matrix
/// (1536 x 576) in 4-bit `Q4_1` blocks: oai's `QMatrix` (the verifiable matmul's bits on the
/// dequantised weights), the verifiable matmul on the same weights in f32, and candle's
/// quantized matmul (8-bit activations).
fn quantized(c: &mut Criterion) {
    use oai_kernels::quantized::{BlockFormat, QMatrix};
    use oai_train::candle::quantized::{GgmlDType, QMatMul, QTensor};
    use oai_train::candle::Module;
    let w = seeded(&[1536, 576], 7, 0.2);
    let q = QTensor::quantize(&w, GgmlDType::Q4_1).expect("blocks");
    let blocks = QMatrix::from_blocks(BlockFormat::Q4_1, 1536, 576, &q.data().expect("bytes"))
        .expect("a matrix");
    let dequantised = q.dequantize(&Device::Cpu).expect("f32");
    let candle = QMatMul::from_qtensor(q).expect("candle's matmul");
    for rows in [1, 32] {
        let x = seeded(&[rows, 576], 8, 2.0);
        let mut group = c.benchmark_group(format!("Q4_1 {rows}x576 @ (1536x576)^T"));
        group.sample_size(20);
        group.bench_function("oai QMatrix", |b| {
            b.iter(|| blocks.matmul_t(&x).expect("product"))
        });
        group.bench_function("verifiable f32", |b| {
            b.iter(|| {
                Kernels::Verifiable
                    .matmul_t(&x, &dequantised)
                    .expect("product")
            })
        });
        group.bench_function("candle QMatMul", |b| {
            b.iter(|| candle.forward(&x).expect("product"))
        });
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    quantized(&mut c);
    c.final_summary();
}
