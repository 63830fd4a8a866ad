//! The referee's agent.

use std::collections::BTreeSet;

use oai_chain::{Address, Chain, JobId, Revert, Turn, B256};
use oai_data::BlockStore;
use oai_train::candle::Device;

use super::{job_ids, Failures};
use crate::background::Background;
use crate::game::{self, Judgement};
use crate::{Error, Result};

/// A referee of the market's adjudicator.
pub struct RefereeAgent<C, S> {
    chain: C,
    store: S,
    me: Address,
    device: Device,
    from_block: u64,
    voted: BTreeSet<B256>,
    failures: Failures,
    /// Cases it could not judge yet (data missing): said once, tried again every tick.
    abstained: BTreeSet<B256>,
    /// Judgements running in the background (a step's replay from its checkpoint may be
    /// long), by job, each with the case it judges.
    judging: Background<(B256, Judgement)>,
}

impl<C: Chain, S: BlockStore + Clone + Send + Sync + 'static> RefereeAgent<C, S> {
    /// A referee acting for `me` (one of the adjudicator's referees), replaying on the CPU.
    pub fn new(chain: C, store: S, me: Address) -> Self {
        Self {
            chain,
            store,
            me,
            device: Device::Cpu,
            from_block: 0,
            voted: BTreeSet::new(),
            failures: Failures::default(),
            abstained: BTreeSet::new(),
            judging: Background::new(),
        }
    }

    /// Read events from `block` on.
    pub fn from_block(mut self, block: u64) -> Self {
        self.from_block = block;
        self
    }

    /// Whether a judgement runs in the background.
    pub fn busy(&self) -> bool {
        self.judging.running()
    }

    /// Wait until the judgements running in the background have finished (a later tick votes).
    pub async fn idle(&mut self) {
        self.judging.finished().await;
    }

    /// One round: judge and vote on every case waiting for adjudication. One case's error is
    /// said once and does not stop the others.
    pub async fn tick(&mut self) -> Result<Vec<String>> {
        let mut did = Vec::new();
        for id in job_ids(&self.chain, self.from_block).await? {
            let outcome = self.tick_job(id).await;
            self.failures.report(id, outcome, &mut did);
        }
        Ok(did)
    }

    async fn tick_job(&mut self, id: JobId) -> Result<Option<String>> {
        let Some(d) = self.chain.dispute(id).await? else {
            return Ok(None);
        };
        if d.turn != Turn::Adjudication {
            return Ok(None);
        }
        let case = self.chain.case_id(id, &d).await?;
        if self.voted.contains(&case) {
            return Ok(None);
        }
        match self.judging.take(id).await {
            Some(Ok((judged, judgement))) if judged == case => {
                return self.vote(id, &d, case, judgement).await
            }
            // an error is said once (a later tick judges again); an earlier case's judgement
            // is of no use
            Some(Err(e)) => return Err(e),
            Some(Ok(_)) => {}
            None if self.judging.has(id) => return Ok(None),
            None => {}
        }
        let job = game::take_case_blocks(&self.chain, &self.store, id, &d).await?;
        let (store, device) = (self.store.clone(), self.device.clone());
        self.judging.start(id, async move {
            Ok((case, game::judge(&store, &job, &d, device).await?))
        });
        Ok(None)
    }

    /// Vote on `job`'s case `d` (id `case`) as `judgement` says, or abstain on data missing.
    async fn vote(
        &mut self,
        id: JobId,
        d: &oai_chain::Dispute,
        case: B256,
        judgement: Judgement,
    ) -> Result<Option<String>> {
        if let Judgement::Unavailable(_) = judgement {
            // no vote on data it does not have: said once, judged again next tick
            return Ok(self
                .abstained
                .insert(case)
                .then(|| format!("job {id}: abstained: {judgement:?}")));
        }
        let said = match game::vote(&self.chain, self.me, case, &judgement).await {
            Ok(_) if d.is_terms() => Some(format!("job {id}: terms judged: {judgement:?}")),
            Ok(_) => Some(format!("job {id}: step {} judged: {judgement:?}", d.lo)),
            // voted before a restart, or the case is decided already
            Err(Error::Chain(e)) if matches!(e.revert(), Some(Revert::Referee(_))) => None,
            Err(e) => return Err(e),
        };
        self.voted.insert(case);
        Ok(said)
    }
}
