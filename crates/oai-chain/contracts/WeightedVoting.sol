// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title WeightedVoting: members with fixed weights vote on proposals; a passed proposal waits
/// out a timelock before it executes.
/// @notice The voting rules every oai DAO shares: a proposal passes once its yes-weight reaches
/// `quorumBps` of the total weight **and** is above its no-weight; it executes `delay` seconds
/// after it first reached the quorum, once, by anyone. What a proposal does is the derived
/// contract's business (`_open` records a new one, `_pass` checks it may execute and marks it).
abstract contract WeightedVoting {
    struct Tally {
        address proposer;
        uint64 quorumAt; // when the yes-weight first reached quorum (0: not yet)
        bool executed;
        uint256 yesWeight;
        uint256 noWeight;
    }

    error NotMember(address caller);
    error AlreadyMember(address member);
    error BadConfig();
    error UnknownProposal(uint256 id);
    error AlreadyVoted(uint256 id, address member);
    error AlreadyExecuted(uint256 id);
    error QuorumNotReached(uint256 yesWeight, uint256 required);
    error Rejected(uint256 yesWeight, uint256 noWeight);
    error TimelockActive(uint64 readyAt);

    event MemberAdded(address indexed member, uint256 weight);
    event Voted(uint256 indexed id, address indexed member, bool support, uint256 weight);
    event QuorumReached(uint256 indexed id, uint64 readyAt);

    uint16 public immutable quorumBps;
    uint64 public immutable delay;
    uint256 public totalWeight;
    uint256 public proposalCount;
    mapping(address => uint256) public weightOf;
    mapping(uint256 => mapping(address => bool)) public hasVoted;
    mapping(uint256 => Tally) public tallies;

    constructor(uint16 quorumBps_, uint64 delay_) {
        if (quorumBps_ == 0 || quorumBps_ > 10000) revert BadConfig();
        quorumBps = quorumBps_;
        delay = delay_;
    }

    function _add(address member, uint256 weight) internal {
        if (weight == 0) revert BadConfig();
        if (weightOf[member] != 0) revert AlreadyMember(member);
        weightOf[member] = weight;
        totalWeight += weight;
        emit MemberAdded(member, weight);
    }

    /// A new proposal by the caller, who must be a member.
    function _open() internal returns (uint256 id) {
        if (weightOf[msg.sender] == 0) revert NotMember(msg.sender);
        id = ++proposalCount;
        tallies[id].proposer = msg.sender;
    }

    function _requiredWeight() private view returns (uint256) {
        return (totalWeight * quorumBps + 9999) / 10000;
    }

    /// @notice Vote once on a proposal with the caller's whole weight.
    function vote(uint256 id, bool support) external {
        uint256 w = weightOf[msg.sender];
        if (w == 0) revert NotMember(msg.sender);
        Tally storage t = tallies[id];
        if (t.proposer == address(0)) revert UnknownProposal(id);
        if (t.executed) revert AlreadyExecuted(id);
        if (hasVoted[id][msg.sender]) revert AlreadyVoted(id, msg.sender);
        hasVoted[id][msg.sender] = true;
        if (support) {
            t.yesWeight += w;
            if (t.quorumAt == 0 && t.yesWeight >= _requiredWeight()) {
                t.quorumAt = uint64(block.timestamp);
                emit QuorumReached(id, t.quorumAt + delay);
            }
        } else {
            t.noWeight += w;
        }
        emit Voted(id, msg.sender, support, w);
    }

    /// Check that proposal `id` may execute now (quorum, yes above no, timelock over, not yet
    /// executed) and mark it executed.
    function _pass(uint256 id) internal {
        Tally storage t = tallies[id];
        if (t.proposer == address(0)) revert UnknownProposal(id);
        if (t.executed) revert AlreadyExecuted(id);
        uint256 required = _requiredWeight();
        if (t.quorumAt == 0 || t.yesWeight < required) revert QuorumNotReached(t.yesWeight, required);
        if (t.yesWeight <= t.noWeight) revert Rejected(t.yesWeight, t.noWeight);
        if (block.timestamp < t.quorumAt + delay) revert TimelockActive(t.quorumAt + delay);
        t.executed = true;
    }
}
