// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {WeightedVoting} from "./WeightedVoting.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {RefereeAdjudicator} from "./RefereeAdjudicator.sol";
import {TrainingMarket} from "./TrainingMarket.sol";

/// @title TrainingDAO: the training network's rules, changed by vote.
/// @notice The governor of a deployment's registry, referee adjudicator and market. Members with
/// fixed weights propose a change, vote on it by the rules of `WeightedVoting` (quorum, yes
/// above no, a timelock from the quorum on), and anyone executes a passed one:
/// - `Referees` (`address[] referees, uint256 threshold`): a new referee set and threshold (a
///   strict majority); votes cast under the old set stop counting;
/// - `Parameters` (`TrainingMarket.Parameters`): the burn share, the move and adjudication
///   timeouts, the bounds of a job's challenge window;
/// - `MinStake` (`uint256`): the floor of stakes (and so of every job's required stake and
///   every challenger's bond);
/// - `Admission` (`bool open`): registration open to all nodes, or only to admitted ones;
/// - `Admit` (`address node, bool admitted`): admit a node, or withdraw its admission (it
///   then claims no new job).
/// A change the target refuses (a minority threshold, a timeout out of bounds) cannot execute:
/// `execute` reverts with the target's error.
contract TrainingDAO is WeightedVoting {
    enum Kind {
        Referees,
        Parameters,
        MinStake,
        Admission,
        Admit
    }

    struct Change {
        Kind kind;
        bytes args; // the ABI encoding of the change's arguments
    }

    event ChangeProposed(uint256 indexed id, address indexed proposer, Kind kind, bytes args);
    event ChangeExecuted(uint256 indexed id, Kind kind);

    NodeRegistry public immutable registry;
    TrainingMarket public immutable market;
    RefereeAdjudicator public immutable adjudicator;
    mapping(uint256 => Change) private changes;

    constructor(
        address[] memory members,
        uint256[] memory weights,
        uint16 quorumBps_,
        uint64 delay_,
        NodeRegistry registry_,
        TrainingMarket market_,
        RefereeAdjudicator adjudicator_
    ) WeightedVoting(quorumBps_, delay_) {
        if (members.length == 0 || members.length != weights.length) revert BadConfig();
        registry = registry_;
        market = market_;
        adjudicator = adjudicator_;
        for (uint256 i = 0; i < members.length; i++) {
            _add(members[i], weights[i]);
        }
    }

    /// @notice Propose a change of `kind` with `args` (checked to decode as that kind's).
    function propose(Kind kind, bytes calldata args) external returns (uint256 id) {
        _apply(kind, args, false);
        id = _open();
        changes[id] = Change(kind, args);
        emit ChangeProposed(id, msg.sender, kind, args);
    }

    /// @notice A proposed change.
    function change(uint256 id) external view returns (Change memory) {
        if (tallies[id].proposer == address(0)) revert UnknownProposal(id);
        return changes[id];
    }

    /// @notice Apply a passed change (anyone may call, once its timelock is over).
    function execute(uint256 id) external {
        _pass(id);
        Change storage c = changes[id];
        _apply(c.kind, c.args, true);
        emit ChangeExecuted(id, c.kind);
    }

    /// Decode `args` as `kind`'s (a malformed encoding reverts) and, when `doIt`, make the
    /// change on its target.
    function _apply(Kind kind, bytes memory args, bool doIt) private {
        if (kind == Kind.Referees) {
            (address[] memory referees, uint256 threshold) = abi.decode(args, (address[], uint256));
            if (doIt) adjudicator.setReferees(referees, threshold);
        } else if (kind == Kind.Parameters) {
            TrainingMarket.Parameters memory p = abi.decode(args, (TrainingMarket.Parameters));
            if (doIt) market.setParameters(p);
        } else if (kind == Kind.MinStake) {
            uint256 floor = abi.decode(args, (uint256));
            if (doIt) registry.setMinStake(floor);
        } else if (kind == Kind.Admission) {
            bool open = abi.decode(args, (bool));
            if (doIt) registry.setOpen(open);
        } else {
            (address node, bool admitted) = abi.decode(args, (address, bool));
            if (doIt) registry.setAdmitted(node, admitted);
        }
    }
}
