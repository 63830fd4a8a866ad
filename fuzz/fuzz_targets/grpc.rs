//! The federation's gRPC messages as a peer sends them (a query to a server, an answer to a
//! client): decoding must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oai_rag::federation::grpc::{QueryRequest, QueryResponse};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = QueryRequest::decode(data);
    let _ = QueryResponse::decode(data);
});
