//! safetensors checkpoints as a node commits them: decoding any bytes must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oai_train::candle::Device;
use oai_train::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Checkpoint::decode(data, &Device::Cpu) {
        // what decodes encodes again, and decodes to the same tensors
        let bytes = c.encode().expect("a decoded checkpoint encodes");
        let back = Checkpoint::decode(&bytes, &Device::Cpu).expect("its encoding decodes");
        assert_eq!(c.first_difference(&back).unwrap(), None);
    }
});
