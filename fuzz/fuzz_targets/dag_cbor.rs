//! DAG-CBOR objects read from a store: step records, log headers and summaries, job specs,
//! dataset manifests, records and change sets. The first byte picks the type. Decoding must
//! not panic, and what decodes encodes to canonical bytes that decode and encode the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oai_data::dataset::{ChangeSet, Manifest, Record};
use oai_train::log::{self, LogHeader, StepRecord, TrainingLog};
use oai_train::JobSpec;

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) {
    if let Ok(v) = log::decode::<T>("fuzzed object", bytes) {
        let again = log::encode(&v).expect("a decoded value encodes");
        let back: T = log::decode("fuzzed object", &again).expect("its encoding decodes");
        assert_eq!(log::encode(&back).unwrap(), again, "one canonical encoding");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 7 {
        0 => round_trip::<StepRecord>(bytes),
        1 => round_trip::<LogHeader>(bytes),
        2 => round_trip::<TrainingLog>(bytes),
        3 => {
            if let Ok(spec) = JobSpec::decode(bytes) {
                let _ = spec.validate();
                let _ = oai_train::Footprint::of(&spec);
            }
        }
        4 => {
            let _ = Manifest::decode(bytes);
        }
        5 => {
            let _ = Record::decode(bytes);
        }
        _ => {
            let _ = ChangeSet::decode(bytes);
        }
    }
});
