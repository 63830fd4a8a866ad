//! Where a step's time goes ([`StepTimes`]), as [`crate::Trainer::step`] reports it.

use std::time::{Duration, Instant};

/// Where one step's wall-clock time went, phase by phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepTimes {
    /// Loading the batch's records from the store, each proven against the dataset root. In a
    /// logged run the batch loads during the previous step's `hash`; this is then only the
    /// time to take it over.
    pub batch: Duration,
    /// The batch's tensors, the forward pass and the loss.
    pub forward: Duration,
    /// The backward pass.
    pub backward: Duration,
    /// The global gradient norm (and the clipping factor).
    pub clip: Duration,
    /// The optimiser's update of the weights and its state.
    pub optimizer: Duration,
    /// Hashing the updated weights for the step's commitment (logged runs only), while the
    /// calling thread loads the next step's batch beside it.
    pub hash: Duration,
    /// Writing the previous step's record, and the checkpoint when one is due.
    pub log: Duration,
}

impl StepTimes {
    /// The phases by name, in the order a step runs them.
    pub fn phases(&self) -> [(&'static str, Duration); 7] {
        [
            ("batch", self.batch),
            ("forward", self.forward),
            ("backward", self.backward),
            ("clip", self.clip),
            ("optimizer", self.optimizer),
            ("hash", self.hash),
            ("log", self.log),
        ]
    }

    /// The sum of the phases.
    pub fn total(&self) -> Duration {
        self.phases().iter().map(|(_, d)| *d).sum()
    }

    /// Each phase of `self` and `other` combined by `f`.
    fn zip_with(self, other: Self, f: impl Fn(Duration, Duration) -> Duration) -> Self {
        Self {
            batch: f(self.batch, other.batch),
            forward: f(self.forward, other.forward),
            backward: f(self.backward, other.backward),
            clip: f(self.clip, other.clip),
            optimizer: f(self.optimizer, other.optimizer),
            hash: f(self.hash, other.hash),
            log: f(self.log, other.log),
        }
    }
}

/// Phase by phase: sums the times of several steps.
impl std::ops::AddAssign for StepTimes {
    fn add_assign(&mut self, other: Self) {
        *self = self.zip_with(other, |a, b| a + b);
    }
}

/// Phase by phase: the mean of `n` steps' summed times.
impl std::ops::Div<u32> for StepTimes {
    type Output = Self;

    fn div(self, n: u32) -> Self {
        self.zip_with(self, |a, _| a / n)
    }
}

/// The time since `*mark`, moving the mark to now.
pub(crate) fn lap(mark: &mut Instant) -> Duration {
    let now = Instant::now();
    let d = now - *mark;
    *mark = now;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Summing steps' times and dividing by their count gives each phase's mean.
    #[test]
    fn step_times_add_up_and_average_phase_by_phase() {
        let ms = Duration::from_millis;
        let a = StepTimes {
            batch: ms(1),
            forward: ms(4),
            backward: ms(8),
            log: ms(2),
            ..StepTimes::default()
        };
        let b = StepTimes {
            batch: ms(3),
            optimizer: ms(6),
            ..StepTimes::default()
        };
        let mut sum = StepTimes::default();
        sum += a;
        sum += b;
        let mean = sum / 2;
        assert_eq!(
            mean.phases().map(|(_, d)| d),
            [ms(2), ms(2), ms(4), ms(0), ms(3), ms(0), ms(1)]
        );
        assert_eq!(mean.total(), ms(12));
    }
}
