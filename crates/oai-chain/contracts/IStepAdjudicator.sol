// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title IStepAdjudicator: decides one disputed training step.
/// @notice A bisection game ends on one step: from the state commitment `before` both sides
/// agree on, the node claims the step gives `nodeAfter`, the challenger says it does not. The
/// market names the case `caseId = keccak256(abi.encode(market, jobId, step, before,
/// nodeAfter))` and reads the verdict. A case with `step == type(uint64).max` is over the whole
/// result instead: does the log from `before` (the genesis) to `nodeAfter` (the head) answer the
/// job's terms (its step count, spec, dataset and compute class)? NodeCorrect when it does; how it is reached (referees re-executing the step, a zk
/// proof) is the implementation's business.
interface IStepAdjudicator {
    /// @notice The decision on a case.
    enum Verdict {
        Pending,
        NodeCorrect,
        NodeWrong
    }

    /// @notice The verdict on `caseId` (Pending until decided).
    function verdict(bytes32 caseId) external view returns (Verdict);
}
