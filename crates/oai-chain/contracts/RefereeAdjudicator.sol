// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {IStepAdjudicator} from "./IStepAdjudicator.sol";

/// @title RefereeAdjudicator: an m-of-n referee set decides disputed steps.
/// @notice Each referee re-executes the step off-chain (oai replay) and votes; the first side to
/// reach `threshold` votes (a strict majority of the set) is the verdict, final from then on.
/// At most 64 referees; a case's tallies, voters, verdict and the set they were cast under share
/// one storage slot. The governor (a `TrainingDAO`, set once; none: the set never changes) may
/// replace the set and its threshold: each change starts a new `epoch`, and votes cast under an
/// earlier set no longer count (a removed referee's vote is void; a decided case stays decided).
contract RefereeAdjudicator is IStepAdjudicator {
    struct Case {
        uint8 nodeCorrect; // votes under `epoch`
        uint8 nodeWrong; // votes under `epoch`
        Verdict verdict;
        uint64 voted; // bit i: referee i of the set of `epoch` voted
        uint32 epoch; // the set the votes were cast under
    }

    error BadReferees(uint256 threshold, uint256 referees);
    error NotReferee(address caller);
    error AlreadyVoted(bytes32 caseId, address referee);
    error AlreadyDecided(bytes32 caseId);
    error NotGovernor(address caller);
    error GovernorAlreadySet(address governor);
    error NotDeployer(address caller);

    event Voted(bytes32 indexed caseId, address indexed referee, bool nodeCorrect);
    event Decided(bytes32 indexed caseId, Verdict verdict);
    event RefereesSet(uint32 indexed epoch, address[] referees, uint256 threshold);
    event GovernorSet(address governor);

    /// @notice Votes a verdict needs (packed with `epoch` and `governor`: one read per vote).
    uint8 public threshold;
    /// @notice The referee set's version: 0 at deployment, one more at each change.
    uint32 public epoch;
    address public governor;
    /// Whether `setGovernor` was called (with the zero address: the rules are final).
    bool private governorFixed;
    address private immutable deployer;
    address[] private set;
    mapping(address => uint256) private refereeBit; // 1 << index, 0: not a referee
    mapping(bytes32 => Case) public cases;

    constructor(address[] memory referees_, uint256 threshold_) {
        deployer = msg.sender;
        _setReferees(referees_, threshold_);
    }

    /// @notice Hand the referee set to `governor_`, once, by the deployer (the zero address fixes
    /// it for good).
    function setGovernor(address governor_) external {
        if (governorFixed) revert GovernorAlreadySet(governor);
        governorFixed = true;
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        governor = governor_;
        emit GovernorSet(governor_);
    }

    /// @notice The governor replaces the referee set and its threshold (a strict majority);
    /// votes cast under the old set stop counting.
    function setReferees(address[] calldata referees_, uint256 threshold_) external {
        if (msg.sender != governor || governor == address(0)) revert NotGovernor(msg.sender);
        for (uint256 i = 0; i < set.length; i++) {
            delete refereeBit[set[i]];
        }
        epoch += 1;
        _setReferees(referees_, threshold_);
    }

    function _setReferees(address[] memory referees_, uint256 threshold_) private {
        // a strict majority: two disjoint groups of referees can never both reach it
        if (threshold_ * 2 <= referees_.length || threshold_ > referees_.length || referees_.length > 64) {
            revert BadReferees(threshold_, referees_.length);
        }
        threshold = uint8(threshold_);
        set = referees_;
        for (uint256 i = 0; i < referees_.length; i++) {
            if (referees_[i] == address(0) || refereeBit[referees_[i]] != 0) {
                revert BadReferees(threshold_, referees_.length);
            }
            refereeBit[referees_[i]] = 1 << i;
        }
        emit RefereesSet(epoch, referees_, threshold_);
    }

    /// @notice Whether `who` is one of the referees.
    function isReferee(address who) external view returns (bool) {
        return refereeBit[who] != 0;
    }

    /// @notice The referee set, in order.
    function referees() external view returns (address[] memory) {
        return set;
    }

    /// @notice Vote on a case: `nodeCorrect` when re-executing the step from `before` gives the
    /// node's claimed commitment.
    function vote(bytes32 caseId, bool nodeCorrect) external {
        uint256 bit = refereeBit[msg.sender];
        if (bit == 0) revert NotReferee(msg.sender);
        Case memory c = cases[caseId];
        if (c.verdict != Verdict.Pending) revert AlreadyDecided(caseId);
        if (c.epoch != epoch) {
            // cast under another set: those votes no longer count
            c = Case(0, 0, Verdict.Pending, 0, epoch);
        }
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
