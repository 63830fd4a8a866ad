//! An in-process Qdrant: the gRPC services `qdrant-client` generates (`Points`, `Collections`),
//! served by tonic on 127.0.0.1 and backed by a map, with exact (dot product) search and
//! `must` keyword filters on payload paths. It records every request it receives so tests can
//! check what the client sends, and can be told to lie. The RPCs oai does not use answer
//! `unimplemented`. No Qdrant server can be installed here (see DESIGN.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use q::collections_server::{Collections, CollectionsServer};
use q::points_server::{Points, PointsServer};
use qdrant_client::qdrant as q;
use tonic::{Request, Response, Status};

/// How the fake misbehaves in search answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Answer honestly.
    None,
    /// Every hit's payload names another source than its id derives from.
    SwapSources,
    /// Hits come without payload.
    DropPayload,
}

#[derive(Debug, Default)]
struct Collection {
    dim: u64,
    points: BTreeMap<String, (Vec<f32>, HashMap<String, q::Value>)>,
}

/// Requests received, in order, per RPC.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub exists: Vec<q::CollectionExistsRequest>,
    pub creates: Vec<q::CreateCollection>,
    pub upserts: Vec<q::UpsertPoints>,
    pub deletes: Vec<q::DeletePoints>,
    pub gets: Vec<q::GetPoints>,
    pub counts: Vec<q::CountPoints>,
    pub queries: Vec<q::QueryPoints>,
}

#[derive(Debug)]
struct State {
    collections: BTreeMap<String, Collection>,
    received: Received,
    lie: Lie,
}

/// The fake server's shared state.
#[derive(Debug)]
pub struct FakeQdrant {
    state: Mutex<State>,
}

impl FakeQdrant {
    /// Start serving on a free 127.0.0.1 port; returns the state and the gRPC URL.
    pub async fn start() -> (Arc<Self>, String) {
        let fake = Arc::new(Self {
            state: Mutex::new(State {
                collections: BTreeMap::new(),
                received: Received::default(),
                lie: Lie::None,
            }),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tonic::transport::Server::builder()
            .add_service(PointsServer::from_arc(fake.clone()))
            .add_service(CollectionsServer::from_arc(fake.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);
        (fake, url)
    }

    /// What the server received so far.
    pub fn received(&self) -> Received {
        self.state.lock().unwrap().received.clone()
    }

    /// Make search answers lie (or stop lying).
    pub fn lie(&self, lie: Lie) {
        self.state.lock().unwrap().lie = lie;
    }
}

fn unused(rpc: &str) -> Status {
    Status::unimplemented(format!("the fake Qdrant does not serve {rpc}"))
}

fn collection<'a>(s: &'a mut State, name: &str) -> Result<&'a mut Collection, Status> {
    s.collections
        .get_mut(name)
        .ok_or_else(|| Status::not_found(format!("collection {name} does not exist")))
}

fn id_text(id: &q::PointId) -> Result<String, Status> {
    match &id.point_id_options {
        Some(q::point_id::PointIdOptions::Uuid(u)) => Ok(u.clone()),
        Some(q::point_id::PointIdOptions::Num(n)) => Ok(n.to_string()),
        None => Err(Status::invalid_argument("point without id")),
    }
}

fn uuid_id(id: &str) -> q::PointId {
    q::PointId {
        point_id_options: Some(q::point_id::PointIdOptions::Uuid(id.to_string())),
    }
}

fn dense(v: Option<&q::Vectors>) -> Result<Vec<f32>, Status> {
    let Some(q::vectors::VectorsOptions::Vector(v)) = v.and_then(|v| v.vectors_options.as_ref())
    else {
        return Err(Status::invalid_argument("expected one unnamed vector"));
    };
    match &v.vector {
        Some(q::vector::Vector::Dense(d)) => Ok(d.data.clone()),
        other => Err(Status::invalid_argument(format!(
            "not a dense vector: {other:?}"
        ))),
    }
}

/// The string at a dotted payload path.
fn path<'a>(payload: &'a HashMap<String, q::Value>, key: &str) -> Option<&'a str> {
    let mut parts = key.split('.');
    let mut value = payload.get(parts.next()?)?;
    for part in parts {
        match &value.kind {
            Some(q::value::Kind::StructValue(s)) => value = s.fields.get(part)?,
            _ => return None,
        }
    }
    match &value.kind {
        Some(q::value::Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn passes(filter: Option<&q::Filter>, payload: &HashMap<String, q::Value>) -> Result<bool, Status> {
    let Some(f) = filter else { return Ok(true) };
    if !f.should.is_empty() || !f.must_not.is_empty() {
        return Err(Status::unimplemented("the fake filters with `must` only"));
    }
    for c in &f.must {
        let Some(q::condition::ConditionOneOf::Field(field)) = &c.condition_one_of else {
            return Err(Status::unimplemented("the fake filters on fields only"));
        };
        let Some(q::r#match::MatchValue::Keyword(want)) =
            field.r#match.as_ref().and_then(|m| m.match_value.as_ref())
        else {
            return Err(Status::unimplemented("the fake matches keywords only"));
        };
        if path(payload, &field.key) != Some(want.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn with_payload(selector: Option<&q::WithPayloadSelector>) -> bool {
    matches!(
        selector.and_then(|s| s.selector_options.as_ref()),
        Some(q::with_payload_selector::SelectorOptions::Enable(true))
    )
}

fn done() -> q::PointsOperationResponse {
    q::PointsOperationResponse {
        result: Some(q::UpdateResult {
            operation_id: Some(0),
            status: q::UpdateStatus::Completed as i32,
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Points for FakeQdrant {
    async fn upsert(
        &self,
        r: Request<q::UpsertPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        let r = r.into_inner();
        let mut s = self.state.lock().unwrap();
        s.received.upserts.push(r.clone());
        let c = collection(&mut s, &r.collection_name)?;
        let mut staged = Vec::new();
        for p in &r.points {
            let v = dense(p.vectors.as_ref())?;
            if v.len() as u64 != c.dim {
                return Err(Status::invalid_argument(format!(
                    "vector of {} values in a collection of {}",
                    v.len(),
                    c.dim
                )));
            }
            let id = id_text(
                p.id.as_ref()
                    .ok_or_else(|| Status::invalid_argument("no id"))?,
            )?;
            staged.push((id, (v, p.payload.clone())));
        }
        c.points.extend(staged);
        Ok(Response::new(done()))
    }

    async fn delete(
        &self,
        r: Request<q::DeletePoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        let r = r.into_inner();
        let mut s = self.state.lock().unwrap();
        s.received.deletes.push(r.clone());
        let c = collection(&mut s, &r.collection_name)?;
        let Some(q::points_selector::PointsSelectorOneOf::Points(list)) = r
            .points
            .as_ref()
            .and_then(|p| p.points_selector_one_of.as_ref())
        else {
            return Err(Status::unimplemented("the fake deletes by id list only"));
        };
        for id in &list.ids {
            c.points.remove(&id_text(id)?);
        }
        Ok(Response::new(done()))
    }

    async fn get(&self, r: Request<q::GetPoints>) -> Result<Response<q::GetResponse>, Status> {
        let r = r.into_inner();
        let mut s = self.state.lock().unwrap();
        s.received.gets.push(r.clone());
        let c = collection(&mut s, &r.collection_name)?;
        let mut result = Vec::new();
        for id in &r.ids {
            let id = id_text(id)?;
            if let Some((_, payload)) = c.points.get(&id) {
                result.push(q::RetrievedPoint {
                    id: Some(uuid_id(&id)),
                    payload: if with_payload(r.with_payload.as_ref()) {
                        payload.clone()
                    } else {
                        HashMap::new()
                    },
                    ..Default::default()
                });
            }
        }
        Ok(Response::new(q::GetResponse {
            result,
            ..Default::default()
        }))
    }

    async fn count(
        &self,
        r: Request<q::CountPoints>,
    ) -> Result<Response<q::CountResponse>, Status> {
        let r = r.into_inner();
        let mut s = self.state.lock().unwrap();
        s.received.counts.push(r.clone());
        let c = collection(&mut s, &r.collection_name)?;
        let mut count = 0;
        for (_, payload) in c.points.values() {
            count += passes(r.filter.as_ref(), payload)? as u64;
        }
        Ok(Response::new(q::CountResponse {
            result: Some(q::CountResult { count }),
            ..Default::default()
        }))
    }

    async fn query(
        &self,
        r: Request<q::QueryPoints>,
    ) -> Result<Response<q::QueryResponse>, Status> {
        let r = r.into_inner();
        let mut s = self.state.lock().unwrap();
        s.received.queries.push(r.clone());
        let lie = s.lie;
        let c = collection(&mut s, &r.collection_name)?;
        let Some(q::query::Variant::Nearest(input)) =
            r.query.as_ref().and_then(|q| q.variant.as_ref())
        else {
            return Err(Status::unimplemented(
                "the fake answers nearest queries only",
            ));
        };
        let Some(q::vector_input::Variant::Dense(query)) = &input.variant else {
            return Err(Status::invalid_argument("not a dense query vector"));
        };
        if query.data.len() as u64 != c.dim {
            return Err(Status::invalid_argument("query of the wrong dimension"));
        }
        let mut scored = Vec::new();
        for (id, (v, payload)) in &c.points {
            if passes(r.filter.as_ref(), payload)? {
                let score: f32 = v.iter().zip(&query.data).map(|(a, b)| a * b).sum();
                scored.push((score, id, payload));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored.truncate(r.limit.unwrap_or(10) as usize);
        let others: Vec<HashMap<String, q::Value>> =
            scored.iter().map(|(_, _, p)| (*p).clone()).collect();
        let result = scored
            .iter()
            .enumerate()
            .map(|(i, (score, id, payload))| q::ScoredPoint {
                id: Some(uuid_id(id)),
                payload: match lie {
                    _ if !with_payload(r.with_payload.as_ref()) => HashMap::new(),
                    Lie::None => (*payload).clone(),
                    Lie::SwapSources => others[(i + 1) % others.len()].clone(),
                    Lie::DropPayload => HashMap::new(),
                },
                score: *score,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(q::QueryResponse {
            result,
            ..Default::default()
        }))
    }

    async fn update_vectors(
        &self,
        _: Request<q::UpdatePointVectors>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("update_vectors"))
    }
    async fn delete_vectors(
        &self,
        _: Request<q::DeletePointVectors>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("delete_vectors"))
    }
    async fn set_payload(
        &self,
        _: Request<q::SetPayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("set_payload"))
    }
    async fn overwrite_payload(
        &self,
        _: Request<q::SetPayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("overwrite_payload"))
    }
    async fn delete_payload(
        &self,
        _: Request<q::DeletePayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("delete_payload"))
    }
    async fn clear_payload(
        &self,
        _: Request<q::ClearPayloadPoints>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("clear_payload"))
    }
    async fn create_field_index(
        &self,
        _: Request<q::CreateFieldIndexCollection>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("create_field_index"))
    }
    async fn delete_field_index(
        &self,
        _: Request<q::DeleteFieldIndexCollection>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("delete_field_index"))
    }
    async fn create_vector_name(
        &self,
        _: Request<q::CreateVectorNameRequest>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("create_vector_name"))
    }
    async fn delete_vector_name(
        &self,
        _: Request<q::DeleteVectorNameRequest>,
    ) -> Result<Response<q::PointsOperationResponse>, Status> {
        Err(unused("delete_vector_name"))
    }
    async fn search(
        &self,
        _: Request<q::SearchPoints>,
    ) -> Result<Response<q::SearchResponse>, Status> {
        Err(unused("search"))
    }
    async fn search_batch(
        &self,
        _: Request<q::SearchBatchPoints>,
    ) -> Result<Response<q::SearchBatchResponse>, Status> {
        Err(unused("search_batch"))
    }
    async fn search_groups(
        &self,
        _: Request<q::SearchPointGroups>,
    ) -> Result<Response<q::SearchGroupsResponse>, Status> {
        Err(unused("search_groups"))
    }
    async fn scroll(
        &self,
        _: Request<q::ScrollPoints>,
    ) -> Result<Response<q::ScrollResponse>, Status> {
        Err(unused("scroll"))
    }
    async fn recommend(
        &self,
        _: Request<q::RecommendPoints>,
    ) -> Result<Response<q::RecommendResponse>, Status> {
        Err(unused("recommend"))
    }
    async fn recommend_batch(
        &self,
        _: Request<q::RecommendBatchPoints>,
    ) -> Result<Response<q::RecommendBatchResponse>, Status> {
        Err(unused("recommend_batch"))
    }
    async fn recommend_groups(
        &self,
        _: Request<q::RecommendPointGroups>,
    ) -> Result<Response<q::RecommendGroupsResponse>, Status> {
        Err(unused("recommend_groups"))
    }
    async fn discover(
        &self,
        _: Request<q::DiscoverPoints>,
    ) -> Result<Response<q::DiscoverResponse>, Status> {
        Err(unused("discover"))
    }
    async fn discover_batch(
        &self,
        _: Request<q::DiscoverBatchPoints>,
    ) -> Result<Response<q::DiscoverBatchResponse>, Status> {
        Err(unused("discover_batch"))
    }
    async fn update_batch(
        &self,
        _: Request<q::UpdateBatchPoints>,
    ) -> Result<Response<q::UpdateBatchResponse>, Status> {
        Err(unused("update_batch"))
    }
    async fn query_batch(
        &self,
        _: Request<q::QueryBatchPoints>,
    ) -> Result<Response<q::QueryBatchResponse>, Status> {
        Err(unused("query_batch"))
    }
    async fn query_groups(
        &self,
        _: Request<q::QueryPointGroups>,
    ) -> Result<Response<q::QueryGroupsResponse>, Status> {
        Err(unused("query_groups"))
    }
    async fn facet(
        &self,
        _: Request<q::FacetCounts>,
    ) -> Result<Response<q::FacetResponse>, Status> {
        Err(unused("facet"))
    }
    async fn search_matrix_pairs(
        &self,
        _: Request<q::SearchMatrixPoints>,
    ) -> Result<Response<q::SearchMatrixPairsResponse>, Status> {
        Err(unused("search_matrix_pairs"))
    }
    async fn search_matrix_offsets(
        &self,
        _: Request<q::SearchMatrixPoints>,
    ) -> Result<Response<q::SearchMatrixOffsetsResponse>, Status> {
        Err(unused("search_matrix_offsets"))
    }
}

#[tonic::async_trait]
impl Collections for FakeQdrant {
    async fn create(
        &self,
        r: Request<q::CreateCollection>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        let r = r.into_inner();
        let mut s = self.state.lock().unwrap();
        s.received.creates.push(r.clone());
        let Some(q::vectors_config::Config::Params(params)) =
            r.vectors_config.as_ref().and_then(|c| c.config.as_ref())
        else {
            return Err(Status::invalid_argument(
                "expected one unnamed vector config",
            ));
        };
        if s.collections.contains_key(&r.collection_name) {
            return Err(Status::already_exists(r.collection_name));
        }
        s.collections.insert(
            r.collection_name.clone(),
            Collection {
                dim: params.size,
                points: BTreeMap::new(),
            },
        );
        Ok(Response::new(q::CollectionOperationResponse {
            result: true,
            ..Default::default()
        }))
    }

    async fn collection_exists(
        &self,
        r: Request<q::CollectionExistsRequest>,
    ) -> Result<Response<q::CollectionExistsResponse>, Status> {
        let r = r.into_inner();
        let mut s = self.state.lock().unwrap();
        s.received.exists.push(r.clone());
        let exists = s.collections.contains_key(&r.collection_name);
        Ok(Response::new(q::CollectionExistsResponse {
            result: Some(q::CollectionExists { exists }),
            ..Default::default()
        }))
    }

    async fn get(
        &self,
        _: Request<q::GetCollectionInfoRequest>,
    ) -> Result<Response<q::GetCollectionInfoResponse>, Status> {
        Err(unused("get"))
    }
    async fn list(
        &self,
        _: Request<q::ListCollectionsRequest>,
    ) -> Result<Response<q::ListCollectionsResponse>, Status> {
        Err(unused("list"))
    }
    async fn update(
        &self,
        _: Request<q::UpdateCollection>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        Err(unused("update"))
    }
    async fn delete(
        &self,
        _: Request<q::DeleteCollection>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        Err(unused("delete"))
    }
    async fn update_aliases(
        &self,
        _: Request<q::ChangeAliases>,
    ) -> Result<Response<q::CollectionOperationResponse>, Status> {
        Err(unused("update_aliases"))
    }
    async fn list_collection_aliases(
        &self,
        _: Request<q::ListCollectionAliasesRequest>,
    ) -> Result<Response<q::ListAliasesResponse>, Status> {
        Err(unused("list_collection_aliases"))
    }
    async fn list_aliases(
        &self,
        _: Request<q::ListAliasesRequest>,
    ) -> Result<Response<q::ListAliasesResponse>, Status> {
        Err(unused("list_aliases"))
    }
    async fn collection_cluster_info(
        &self,
        _: Request<q::CollectionClusterInfoRequest>,
    ) -> Result<Response<q::CollectionClusterInfoResponse>, Status> {
        Err(unused("collection_cluster_info"))
    }
    async fn update_collection_cluster_setup(
        &self,
        _: Request<q::UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<q::UpdateCollectionClusterSetupResponse>, Status> {
        Err(unused("update_collection_cluster_setup"))
    }
    async fn create_shard_key(
        &self,
        _: Request<q::CreateShardKeyRequest>,
    ) -> Result<Response<q::CreateShardKeyResponse>, Status> {
        Err(unused("create_shard_key"))
    }
    async fn delete_shard_key(
        &self,
        _: Request<q::DeleteShardKeyRequest>,
    ) -> Result<Response<q::DeleteShardKeyResponse>, Status> {
        Err(unused("delete_shard_key"))
    }
    async fn list_shard_keys(
        &self,
        _: Request<q::ListShardKeysRequest>,
    ) -> Result<Response<q::ListShardKeysResponse>, Status> {
        Err(unused("list_shard_keys"))
    }
}
