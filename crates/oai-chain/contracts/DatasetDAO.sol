// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title DatasetDAO: members vote dataset versions in; anyone who disagrees can fork.
/// @notice Members hold fixed voting weights. A member proposes a new version root on top of
/// the current root (`proposalCid` names the oai-data proposal block that anyone can verify);
/// the proposal executes once the yes-weight reaches `quorumBps` of the total weight, `delay`
/// seconds have passed since it did, and the yes-weight is above the no-weight. A proposal made on an older root is stale.
/// A fork is a new DAO deployed with `parent` set: it starts from the parent's current root and
/// rules, with the deployer as first member; other parent members `join` with their weight.
contract DatasetDAO {
    struct Proposal {
        bytes32 parentRoot;
        bytes32 newRoot;
        bytes32 proposalCid;
        address proposer;
        uint64 quorumAt; // when the yes-weight first reached quorum (0: not yet)
        bool executed;
        uint256 yesWeight;
        uint256 noWeight;
    }

    error NotMember(address caller);
    error AlreadyMember(address member);
    error NotAFork();
    error BadConfig();
    error UnknownProposal(uint256 id);
    error AlreadyVoted(uint256 id, address member);
    error AlreadyExecuted(uint256 id);
    error QuorumNotReached(uint256 yesWeight, uint256 required);
    error Rejected(uint256 yesWeight, uint256 noWeight);
    error TimelockActive(uint64 readyAt);
    error StaleProposal(bytes32 parentRoot, bytes32 currentRoot);

    event MemberAdded(address indexed member, uint256 weight);
    event Proposed(uint256 indexed id, address indexed proposer, bytes32 parentRoot, bytes32 newRoot, bytes32 proposalCid);
    event Voted(uint256 indexed id, address indexed member, bool support, uint256 weight);
    event QuorumReached(uint256 indexed id, uint64 readyAt);
    event Executed(uint256 indexed id, bytes32 root, uint64 version);
    event Forked(address indexed parent, bytes32 root, uint64 version);

    DatasetDAO public immutable parent;
    uint16 public immutable quorumBps;
    uint64 public immutable delay;
    bytes32 public root;
    uint64 public version;
    uint256 public totalWeight;
    uint256 public proposalCount;
    mapping(address => uint256) public weightOf;
    mapping(uint256 => Proposal) public proposals;
    mapping(uint256 => mapping(address => bool)) public hasVoted;

    /// @param parent_ zero for a new DAO; a DAO to fork (then the other arguments must be empty
    /// or zero: root and rules come from the parent, the deployer is the first member).
    constructor(
        address[] memory members,
        uint256[] memory weights,
        bytes32 root_,
        uint16 quorumBps_,
        uint64 delay_,
        DatasetDAO parent_
    ) {
        if (address(parent_) == address(0)) {
            if (members.length == 0 || members.length != weights.length || quorumBps_ == 0 || quorumBps_ > 10000) {
                revert BadConfig();
            }
            quorumBps = quorumBps_;
            delay = delay_;
            root = root_;
            for (uint256 i = 0; i < members.length; i++) {
                _add(members[i], weights[i]);
            }
        } else {
            if (members.length != 0 || weights.length != 0) revert BadConfig();
            uint256 w = parent_.weightOf(msg.sender);
            if (w == 0) revert NotMember(msg.sender);
            parent = parent_;
            quorumBps = parent_.quorumBps();
            delay = parent_.delay();
            root = parent_.root();
            version = parent_.version();
            _add(msg.sender, w);
            emit Forked(address(parent_), root, version);
        }
    }

    function _add(address member, uint256 weight) private {
        if (weight == 0) revert BadConfig();
        if (weightOf[member] != 0) revert AlreadyMember(member);
        weightOf[member] = weight;
        totalWeight += weight;
        emit MemberAdded(member, weight);
    }

    /// @notice A member of the parent DAO joins this fork with its parent weight.
    function join() external {
        if (address(parent) == address(0)) revert NotAFork();
        uint256 w = parent.weightOf(msg.sender);
        if (w == 0) revert NotMember(msg.sender);
        _add(msg.sender, w);
    }

    /// @notice Propose `newRoot` as the next version on top of the current root.
    function propose(bytes32 newRoot, bytes32 proposalCid) external returns (uint256 id) {
        if (weightOf[msg.sender] == 0) revert NotMember(msg.sender);
        id = ++proposalCount;
        Proposal storage p = proposals[id];
        p.parentRoot = root;
        p.newRoot = newRoot;
        p.proposalCid = proposalCid;
        p.proposer = msg.sender;
        emit Proposed(id, msg.sender, root, newRoot, proposalCid);
    }

    function _requiredWeight() private view returns (uint256) {
        return (totalWeight * quorumBps + 9999) / 10000;
    }

    /// @notice Vote once on a proposal with the caller's whole weight.
    function vote(uint256 id, bool support) external {
        uint256 w = weightOf[msg.sender];
        if (w == 0) revert NotMember(msg.sender);
        Proposal storage p = proposals[id];
        if (p.proposer == address(0)) revert UnknownProposal(id);
        if (p.executed) revert AlreadyExecuted(id);
        if (hasVoted[id][msg.sender]) revert AlreadyVoted(id, msg.sender);
        hasVoted[id][msg.sender] = true;
        if (support) {
            p.yesWeight += w;
            if (p.quorumAt == 0 && p.yesWeight >= _requiredWeight()) {
                p.quorumAt = uint64(block.timestamp);
                emit QuorumReached(id, p.quorumAt + delay);
            }
        } else {
            p.noWeight += w;
        }
        emit Voted(id, msg.sender, support, w);
    }

    /// @notice Make a passed proposal's root the dataset's version (anyone may call).
    function execute(uint256 id) external {
        Proposal storage p = proposals[id];
        if (p.proposer == address(0)) revert UnknownProposal(id);
        if (p.executed) revert AlreadyExecuted(id);
        uint256 required = _requiredWeight();
        if (p.quorumAt == 0 || p.yesWeight < required) revert QuorumNotReached(p.yesWeight, required);
        if (p.yesWeight <= p.noWeight) revert Rejected(p.yesWeight, p.noWeight);
        if (block.timestamp < p.quorumAt + delay) revert TimelockActive(p.quorumAt + delay);
        if (p.parentRoot != root) revert StaleProposal(p.parentRoot, root);
        p.executed = true;
        root = p.newRoot;
        version += 1;
        emit Executed(id, root, version);
    }
}
