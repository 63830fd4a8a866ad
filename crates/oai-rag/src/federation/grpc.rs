//! Knowledge peers over gRPC (tonic, HTTP/2). Feature `federation`.
//!
//! One unary RPC, `/oai.rag.Knowledge/Query`, whose messages are, in protobuf terms:
//!
//! ```proto
//! syntax = "proto3";
//! package oai.rag;
//! service Knowledge { rpc Query(QueryRequest) returns (QueryResponse); }
//! message QueryRequest { repeated float vector = 1; uint32 k = 2; map<string, string> filter = 3; }
//! message QueryResponse { repeated WireHit hits = 1; }
//! message WireHit { bytes source = 1; float score = 2; map<string, string> meta = 3; bytes record = 4; }
//! ```
//!
//! `source` is the binary CID, `record` the passage record's canonical bytes. The messages are
//! written with `prost` derives (no `protoc` needed to build). [`serve`] exposes any
//! [`KnowledgePeer`]; [`GrpcPeer`] is the client side, itself a [`KnowledgePeer`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oai_core::ids;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::transport::server::TcpConnectInfo;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use super::limit::{Buckets, RateLimit};
use super::{KnowledgePeer, PeerHit, PeerQuery};
use crate::vector::Filter;
use crate::{Error, Result};

/// The gRPC service name.
pub const SERVICE: &str = "oai.rag.Knowledge";
const QUERY_PATH: &str = "/oai.rag.Knowledge/Query";

/// A query on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryRequest {
    /// The query embedding.
    #[prost(float, repeated, tag = "1")]
    pub vector: Vec<f32>,
    /// Hits wanted.
    #[prost(uint32, tag = "2")]
    pub k: u32,
    /// Required metadata key/value pairs.
    #[prost(btree_map = "string, string", tag = "3")]
    pub filter: BTreeMap<String, String>,
}

/// A hit on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WireHit {
    /// The passage's CID, binary.
    #[prost(bytes = "vec", tag = "1")]
    pub source: Vec<u8>,
    /// The peer's score.
    #[prost(float, tag = "2")]
    pub score: f32,
    /// Metadata.
    #[prost(btree_map = "string, string", tag = "3")]
    pub meta: BTreeMap<String, String>,
    /// The passage record's canonical bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub record: Vec<u8>,
}

/// An answer on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResponse {
    /// Hits, best first.
    #[prost(message, repeated, tag = "1")]
    pub hits: Vec<WireHit>,
}

fn to_wire(q: &PeerQuery) -> QueryRequest {
    QueryRequest {
        vector: q.vector.clone(),
        k: u32::try_from(q.k).unwrap_or(u32::MAX),
        filter: q
            .filter
            .as_ref()
            .map(|f| f.equals.clone())
            .unwrap_or_default(),
    }
}

fn from_wire(r: QueryRequest) -> PeerQuery {
    PeerQuery {
        vector: r.vector,
        k: r.k as usize,
        filter: (!r.filter.is_empty()).then_some(Filter { equals: r.filter }),
    }
}

/// The server side: answers `Query` RPCs from a [`KnowledgePeer`], at most its
/// [`RateLimit`] per client address (more is `RESOURCE_EXHAUSTED`).
#[derive(Clone)]
pub struct KnowledgeServer {
    peer: Arc<dyn KnowledgePeer>,
    buckets: Arc<Buckets>,
}

impl KnowledgeServer {
    /// Serve `peer`'s answers within the default [`RateLimit`].
    pub fn new(peer: Arc<dyn KnowledgePeer>) -> Self {
        Self::limited(peer, RateLimit::default())
    }

    /// Serve `peer`'s answers, at most `limit` per client address.
    pub fn limited(peer: Arc<dyn KnowledgePeer>, limit: RateLimit) -> Self {
        Self {
            peer,
            buckets: Arc::new(Buckets::new(limit)),
        }
    }
}

impl tonic::server::NamedService for KnowledgeServer {
    const NAME: &'static str = SERVICE;
}

struct QuerySvc(Arc<dyn KnowledgePeer>);

impl tonic::server::UnaryService<QueryRequest> for QuerySvc {
    type Response = QueryResponse;
    type Future = BoxFuture<Response<QueryResponse>, Status>;

    fn call(&mut self, request: Request<QueryRequest>) -> Self::Future {
        let peer = self.0.clone();
        Box::pin(async move {
            let query = from_wire(request.into_inner());
            if let Some(problem) = super::query_problem(&query) {
                return Err(Status::invalid_argument(problem));
            }
            // a query the peer refuses says why; its own failures stay its own
            let hits = peer.query(&query).await.map_err(|e| match e {
                Error::InvalidInput(m) => Status::invalid_argument(m),
                _ => Status::internal("the peer could not answer the query"),
            })?;
            Ok(Response::new(QueryResponse {
                hits: hits
                    .into_iter()
                    .map(|h| WireHit {
                        source: h.source.to_bytes(),
                        score: h.score,
                        meta: h.meta,
                        record: h.record,
                    })
                    .collect(),
            }))
        })
    }
}

impl<B> Service<http::Request<B>> for KnowledgeServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != QUERY_PATH {
            let path = req.uri().path().to_string();
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("no RPC {path}")).into_http())
            });
        }
        let client = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|a| a.ip());
        if let Some(ip) = client {
            if !self.buckets.admit(ip, Instant::now()) {
                return Box::pin(async move {
                    Ok(Status::resource_exhausted(format!(
                        "too many queries from {ip}: slow down and ask again"
                    ))
                    .into_http())
                });
            }
        }
        let svc = QuerySvc(self.peer.clone());
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(svc, req).await)
        })
    }
}

/// Serve `peer` on `listener` within the default [`RateLimit`] per client address until the
/// returned future is dropped or the listener fails ([`serve_limited`]).
pub async fn serve(peer: Arc<dyn KnowledgePeer>, listener: tokio::net::TcpListener) -> Result<()> {
    serve_limited(peer, listener, RateLimit::default()).await
}

/// Serve `peer` on `listener`, answering each client address at most `limit`, until the
/// returned future is dropped or the listener fails. Accepted connections have Nagle's
/// algorithm off (small answers would otherwise wait for delayed ACKs, ~40 ms each).
pub async fn serve_limited(
    peer: Arc<dyn KnowledgePeer>,
    listener: tokio::net::TcpListener,
    limit: RateLimit,
) -> Result<()> {
    use tokio_stream::StreamExt;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        if let Ok(c) = &conn {
            // best effort: a socket that refuses the option still works, only slower
            let _ = c.set_nodelay(true);
        }
        conn
    });
    tonic::transport::Server::builder()
        .add_service(KnowledgeServer::limited(peer, limit))
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| Error::Backend(format!("knowledge server: {e}")))
}

/// A remote peer reached over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcPeer {
    name: String,
    channel: Channel,
}

impl GrpcPeer {
    /// A peer at `url` (e.g. `http://127.0.0.1:7001`). Connects lazily: an unreachable peer is
    /// an error of its queries, not of this call. `connect_timeout` bounds each connection
    /// attempt. Call it inside a Tokio runtime: the channel spawns its connection task.
    pub fn new(url: &str, connect_timeout: Duration) -> Result<Self> {
        Self::from_address(url, connect_timeout, None)
    }

    /// [`GrpcPeer::new`], connecting from the local address `local` (on a host with several,
    /// the one the peer should see) or, with `None`, from whichever the system picks.
    pub fn from_address(
        url: &str,
        connect_timeout: Duration,
        local: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::InvalidInput(format!("peer URL {url:?}: {e}")))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .local_address(local)
            .connect_lazy();
        Ok(Self {
            name: url.to_string(),
            channel,
        })
    }
}

#[async_trait::async_trait]
impl KnowledgePeer for GrpcPeer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn query(&self, query: &PeerQuery) -> Result<Vec<PeerHit>> {
        let failed = |e: &dyn std::fmt::Display| Error::Backend(format!("peer {}: {e}", self.name));
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| failed(&e))?;
        let response: Response<QueryResponse> = grpc
            .unary(
                Request::new(to_wire(query)),
                http::uri::PathAndQuery::from_static(QUERY_PATH),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map_err(|e| failed(&e))?;
        response
            .into_inner()
            .hits
            .into_iter()
            .map(|h| {
                let source = ids::from_bytes(&h.source)
                    .map_err(|e| failed(&format!("undecodable CID: {e}")))?;
                Ok(PeerHit {
                    source,
                    score: h.score,
                    meta: h.meta,
                    record: h.record,
                })
            })
            .collect()
    }
}
