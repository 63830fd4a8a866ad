// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {WeightedVoting} from "./WeightedVoting.sol";

/// @title DatasetDAO: members vote dataset versions in; anyone who disagrees can fork.
/// @notice Members hold fixed voting weights. A member proposes a new version root on top of
/// the current root (`proposalCid` names the oai-data proposal block that anyone can verify);
/// the proposal executes by the rules of `WeightedVoting` (quorum, yes above no, timelock). A
/// proposal made on an older root is stale. A fork is a new DAO deployed with `parent` set: it
/// starts from the parent's current root and rules, with the deployer as first member; other
/// parent members `join` with their weight.
contract DatasetDAO is WeightedVoting {
    struct Proposal {
        bytes32 parentRoot;
        bytes32 newRoot;
        bytes32 proposalCid;
    }

    error NotAFork();
    error StaleProposal(bytes32 parentRoot, bytes32 currentRoot);

    event Proposed(uint256 indexed id, address indexed proposer, bytes32 parentRoot, bytes32 newRoot, bytes32 proposalCid);
    event Executed(uint256 indexed id, bytes32 root, uint64 version);
    event Forked(address indexed parent, bytes32 root, uint64 version);

    DatasetDAO public immutable parent;
    bytes32 public root;
    uint64 public version;
    mapping(uint256 => Proposal) public proposals;

    /// @param parent_ zero for a new DAO; a DAO to fork (then the other arguments must be empty
    /// or zero: root and rules come from the parent, the deployer is the first member).
    constructor(
        address[] memory members,
        uint256[] memory weights,
        bytes32 root_,
        uint16 quorumBps_,
        uint64 delay_,
        DatasetDAO parent_
    )
        WeightedVoting(
            address(parent_) == address(0) ? quorumBps_ : parent_.quorumBps(),
            address(parent_) == address(0) ? delay_ : parent_.delay()
        )
    {
        if (address(parent_) == address(0)) {
            if (members.length == 0 || members.length != weights.length) revert BadConfig();
            root = root_;
            for (uint256 i = 0; i < members.length; i++) {
                _add(members[i], weights[i]);
            }
        } else {
            if (members.length != 0 || weights.length != 0) revert BadConfig();
            uint256 w = parent_.weightOf(msg.sender);
            if (w == 0) revert NotMember(msg.sender);
            parent = parent_;
            root = parent_.root();
            version = parent_.version();
            _add(msg.sender, w);
            emit Forked(address(parent_), root, version);
        }
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
        id = _open();
        proposals[id] = Proposal(root, newRoot, proposalCid);
        emit Proposed(id, msg.sender, root, newRoot, proposalCid);
    }

    /// @notice Make a passed proposal's root the dataset's version (anyone may call).
    function execute(uint256 id) external {
        _pass(id);
        Proposal storage p = proposals[id];
        if (p.parentRoot != root) revert StaleProposal(p.parentRoot, root);
        root = p.newRoot;
        version += 1;
        emit Executed(id, root, version);
    }
}
