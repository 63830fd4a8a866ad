// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {IStepAdjudicator} from "./IStepAdjudicator.sol";

/// @title RefereeAdjudicator: an m-of-n referee set decides disputed steps.
/// @notice Each referee re-executes the step off-chain (oai replay) and votes; the first side to
/// reach `threshold` votes (a strict majority of the set) is the verdict, final from then on.
/// At most 64 referees; a case's
/// tallies, voters and verdict share one storage slot.
contract RefereeAdjudicator is IStepAdjudicator {
    struct Case {
        uint8 nodeCorrect; // votes
        uint8 nodeWrong; // votes
        Verdict verdict;
        uint64 voted; // bit i: referee i voted
    }

    error BadReferees(uint256 threshold, uint256 referees);
    error NotReferee(address caller);
    error AlreadyVoted(bytes32 caseId, address referee);
    error AlreadyDecided(bytes32 caseId);

    event Voted(bytes32 indexed caseId, address indexed referee, bool nodeCorrect);
    event Decided(bytes32 indexed caseId, Verdict verdict);

    uint256 public immutable threshold;
    mapping(address => uint256) private refereeBit; // 1 << index, 0: not a referee
    mapping(bytes32 => Case) public cases;

    constructor(address[] memory referees, uint256 threshold_) {
        // a strict majority: two disjoint groups of referees can never both reach it
        if (threshold_ * 2 <= referees.length || threshold_ > referees.length || referees.length > 64) {
            revert BadReferees(threshold_, referees.length);
        }
        threshold = threshold_;
        for (uint256 i = 0; i < referees.length; i++) {
            if (refereeBit[referees[i]] != 0) revert BadReferees(threshold_, referees.length);
            refereeBit[referees[i]] = 1 << i;
        }
    }

    /// @notice Whether `who` is one of the referees.
    function isReferee(address who) external view returns (bool) {
        return refereeBit[who] != 0;
    }

    /// @notice Vote on a case: `nodeCorrect` when re-executing the step from `before` gives the
    /// node's claimed commitment.
    function vote(bytes32 caseId, bool nodeCorrect) external {
        uint256 bit = refereeBit[msg.sender];
        if (bit == 0) revert NotReferee(msg.sender);
        Case memory c = cases[caseId];
        if (c.verdict != Verdict.Pending) revert AlreadyDecided(caseId);
        if (c.voted & bit != 0) revert AlreadyVoted(caseId, msg.sender);
        c.voted |= uint64(bit);
        uint256 votes = nodeCorrect ? ++c.nodeCorrect : ++c.nodeWrong;
        emit Voted(caseId, msg.sender, nodeCorrect);
        if (votes >= threshold) {
            c.verdict = nodeCorrect ? Verdict.NodeCorrect : Verdict.NodeWrong;
            emit Decided(caseId, c.verdict);
        }
        cases[caseId] = c;
    }

    /// @inheritdoc IStepAdjudicator
    function verdict(bytes32 caseId) external view returns (Verdict) {
        return cases[caseId].verdict;
    }
}
