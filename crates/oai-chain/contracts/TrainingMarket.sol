// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

import {NodeRegistry} from "./NodeRegistry.sol";
import {IStepAdjudicator} from "./IStepAdjudicator.sol";

/// @title TrainingMarket: escrowed training jobs, optimistic results and bisection disputes.
/// @notice A requester posts a job with a reward that others may add to (crowdfunding); a
/// registered node claims it, locking `requiredStake` of its bond, and submits its training-log
/// commitments; anyone may challenge within the window by bonding `requiredStake`. The dispute
/// bisects the node's step commitments (c_i = state after i steps, c_0 = `genesis`) down to one
/// step, where the adjudicator decides whether the node's c_(lo+1) follows from c_lo; a side
/// that misses its move deadline loses. The node's commitments are bound to its result: it
/// submits `root`, the Merkle root over c_1..c_steps, with its header (whose SHA-256 is c_0);
/// once the game has found the step, the node posts the record behind the disputed c_(lo+1)
/// and proves both commitments the verdict rests on (c_lo and c_(lo+1)) against `root`, so
/// the step judged is one of the submitted log and a referee never needs a block that only
/// the node holds. The loser's deposit (the node's stake or the
/// challenger's bond) is split: `burnBps` of it is burned, the winner takes the rest, so
/// losing on purpose to one's own other account always costs. All payouts are credited and pulled with `withdraw`
/// (checks-effects-interactions, reentrancy guard).
contract TrainingMarket {
    enum Status {
        None,
        Open,
        Claimed,
        Submitted,
        Disputed,
        Paid,
        Slashed,
        Cancelled
    }

    /// @notice Whose move a dispute waits for.
    enum Turn {
        Node,
        Challenger,
        Adjudication,
        Reveal // the node posts the record behind the disputed c_(lo+1)
    }

    struct Job {
        address requester;
        uint32 maxDuration; // seconds a node has from claim to submit
        uint32 challengeWindow; // seconds anyone may challenge a submission
        Status status;
        address node;
        uint64 deadline; // Open: claim by; Claimed: submit by; Submitted: challenge window end
        uint32 claimWindow; // seconds a node has to claim the job once it is open
        bytes32 datasetRoot;
        bytes32 specCid;
        uint64 steps; // steps the job asks for (the spec's); a result has exactly these
        uint256 reward;
        uint256 requiredStake; // locked from the node's bond; also the challenger's bond
        // A result is only what the bisection disputes: everything else about it (the weights,
        // the checkpoints, the Merkle root over the records) follows from `head` by content
        // address, so nothing is held here that the game could not contest.
        bytes32 genesis; // c_0
        bytes32 head; // c_steps, the commitment after the last step (the log's chained head)
        bytes32 root; // Merkle root over c_1..c_steps (leaf i-1 = c_i); binds the node's moves
    }

    /// A request that the node post one record of its submitted log on chain.
    struct Request {
        address by;
        uint64 deadline;
        uint64 index; // record `index`, whose SHA-256 is c_(index+1)
        uint128 bond;
    }

    struct Dispute {
        address challenger;
        uint64 deadline;
        Turn turn;
        uint64 lo; // both sides agree on c_lo
        uint64 hi; // they disagree on c_hi
        uint128 bond;
        bytes32 agreed; // c_lo
        bytes32 nodeHi; // the node's c_hi, which the challenger says is wrong
        bytes32 nodeMid; // the node's c_mid, posted on its turn
    }

    error UnknownJob(uint256 jobId);
    error ZeroAmount();
    error BadJobTerms();
    error RewardAboveStake(uint256 reward, uint256 stake);
    error StakeBelowFloor(uint256 stake, uint256 floor);
    error WrongStatus(uint256 jobId, Status status);
    error NotRequester(uint256 jobId, address caller);
    error ClaimWindowClosed(uint256 jobId, uint64 closedAt);
    error FundingClosed(uint256 jobId);
    error AlreadyClaimed(uint256 jobId, address node);
    error InsufficientStake(uint256 free, uint256 required);
    error NotJobNode(uint256 jobId, address caller);
    error SubmitDeadlinePassed(uint256 jobId, uint64 deadline);
    error NotExpired(uint256 jobId, uint64 deadline);
    error InvalidResult();
    error ChallengeWindowClosed(uint256 jobId, uint64 closedAt);
    error ChallengeWindowOpen(uint256 jobId, uint64 closesAt);
    error BondTooLow(uint256 sent, uint256 required);
    error SameClaim();
    error BadProof(uint256 jobId, uint64 step);
    error BadReveal(uint256 jobId, bytes32 expected);
    error DataRequested(uint256 jobId, uint64 index);
    error NoDataRequest(uint256 jobId);
    error BadIndex(uint256 jobId, uint64 index);
    error NoDispute(uint256 jobId);
    error NotYourTurn(uint256 jobId, address expected);
    error MoveTimedOut(uint256 jobId, uint64 deadline);
    error NotTimedOut(uint256 jobId, uint64 deadline);
    error NoVerdict(uint256 jobId, bytes32 caseId);
    error AlreadyFinalized(uint256 jobId);
    error NotRefundable(uint256 jobId, Status status);
    error NothingToRefund(uint256 jobId);
    error NothingToWithdraw();
    error UnexpectedTransfer(address from);
    error ChallengeWindowOutOfBounds(uint32 window, uint32 min, uint32 max);
    error BadParameters();
    error NotGovernor(address caller);
    error GovernorAlreadySet(address governor);
    error NotDeployer(address caller);
    error TransferFailed();
    error Reentrancy();

    event JobPosted(
        uint256 indexed jobId,
        address indexed requester,
        bytes32 datasetRoot,
        bytes32 specCid,
        uint64 steps,
        uint256 reward
    );
    event Funded(uint256 indexed jobId, address indexed funder, uint256 amount, uint256 reward);
    event Claimed(uint256 indexed jobId, address indexed node, uint64 submitBy);
    event Submitted(uint256 indexed jobId, bytes32 genesis, bytes32 head, bytes32 root, uint64 challengeEnds, bytes header);
    event Revealed(uint256 indexed jobId, uint64 step, bytes32 commitment, bytes record);
    event DataRequest(uint256 indexed jobId, address indexed by, uint64 index, uint128 bond, uint64 deadline);
    event DataAnswered(uint256 indexed jobId, uint64 index, bytes32 commitment, bytes record);
    event DataWithheld(uint256 indexed jobId, address indexed by, uint64 index);
    event Challenged(uint256 indexed jobId, address indexed challenger, bytes32 challengerFinal, uint128 bond);
    event Bisected(uint256 indexed jobId, uint64 lo, uint64 hi, Turn turn);
    event StepDisputed(uint256 indexed jobId, bytes32 indexed caseId, uint64 step, bytes32 before, bytes32 nodeAfter);
    event TermsDisputed(uint256 indexed jobId, bytes32 indexed caseId, bytes32 genesis, bytes32 head);
    event DisputeResolved(uint256 indexed jobId, address indexed winner, bool nodeWon, bool byTimeout);
    event DisputeVoided(uint256 indexed jobId, bytes32 caseId);
    event Finalized(uint256 indexed jobId, address indexed node, uint256 reward);
    event Cancelled(uint256 indexed jobId);
    event Expired(uint256 indexed jobId, address indexed node, uint256 slashed);
    event Refunded(uint256 indexed jobId, address indexed funder, uint256 amount);
    event Withdrawn(address indexed account, address to, uint256 amount);
    event Burned(uint256 indexed jobId, uint256 amount);
    event ParametersSet(uint16 burnBps, uint64 moveTimeout, uint64 adjudicationTimeout, uint32 minChallengeWindow, uint32 maxChallengeWindow);
    event GovernorSet(address governor);

    /// @notice The rules the governor may change (one storage slot).
    struct Parameters {
        /// Share of a lost dispute's forfeited deposit (the node's stake or the challenger's
        /// bond) that is burned, in basis points (1..9999); the rest pays the winner.
        uint16 burnBps;
        /// Seconds each side has for a move (60 s .. 30 days).
        uint64 moveTimeout;
        /// Seconds the adjudicator has before an undecided case is voided (60 s .. 90 days).
        uint64 adjudicationTimeout;
        /// Bounds of a job's challenge window, in seconds (1 <= min <= max).
        uint32 minChallengeWindow;
        uint32 maxChallengeWindow;
    }

    /// @notice The bond of a data request, in basis points of the job's required stake: it pays
    /// the node for posting the record.
    uint16 public constant DATA_BOND_BPS = 100;
    /// @notice The burn a deployment starts with: half the forfeited deposit.
    uint16 public constant DEFAULT_BURN_BPS = 5000;
    /// @notice The step of a terms case (`challengeTerms`): the whole result, not one step.
    uint64 public constant TERMS = type(uint64).max;

    NodeRegistry public immutable registry;
    IStepAdjudicator public immutable adjudicator;
    Parameters public parameters;
    /// @notice Who may change `parameters` (a `TrainingDAO`, set once; none: they never change).
    address public governor;
    /// Whether `setGovernor` was called (with the zero address: the rules are final).
    bool private governorFixed;
    address private immutable deployer;

    uint256 public jobCount;
    mapping(uint256 => Job) private jobs;
    mapping(uint256 => Dispute) private disputes;
    mapping(uint256 => Request) private requests;
    mapping(uint256 => mapping(address => uint256)) public contributions;
    mapping(address => uint256) public owed;
    /// @notice Wei burned from forfeited stakes and bonds so far: they stay in this contract,
    /// which has no way to move them.
    uint256 public burned;
    uint256 private entered = 1;

    constructor(NodeRegistry registry_, IStepAdjudicator adjudicator_, uint64 moveTimeout_, uint64 adjudicationTimeout_) {
        registry = registry_;
        adjudicator = adjudicator_;
        deployer = msg.sender;
        _setParameters(Parameters(DEFAULT_BURN_BPS, moveTimeout_, adjudicationTimeout_, 1, type(uint32).max));
    }

    /// @notice Hand the market's parameters to `governor_`, once, by the deployer (the zero
    /// address fixes them for good).
    function setGovernor(address governor_) external {
        if (governorFixed) revert GovernorAlreadySet(governor);
        governorFixed = true;
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        governor = governor_;
        emit GovernorSet(governor_);
    }

    /// @notice The governor changes the market's rules, within fixed bounds (`BadParameters`
    /// otherwise); they apply from the next move, post or settlement on.
    function setParameters(Parameters calldata p) external {
        if (msg.sender != governor || governor == address(0)) revert NotGovernor(msg.sender);
        _setParameters(p);
    }

    function _setParameters(Parameters memory p) private {
        if (
            p.burnBps == 0 || p.burnBps >= 10000 || p.moveTimeout < 60 || p.moveTimeout > 30 days
                || p.adjudicationTimeout < 60 || p.adjudicationTimeout > 90 days || p.minChallengeWindow == 0
                || p.minChallengeWindow > p.maxChallengeWindow
        ) revert BadParameters();
        parameters = p;
        emit ParametersSet(p.burnBps, p.moveTimeout, p.adjudicationTimeout, p.minChallengeWindow, p.maxChallengeWindow);
    }

    modifier nonReentrant() {
        if (entered != 1) revert Reentrancy();
        entered = 2;
        _;
        entered = 1;
    }

    /// @notice Slashed stake arrives from the registry; nothing else may send ether here.
    receive() external payable {
        if (msg.sender != address(registry)) revert UnexpectedTransfer(msg.sender);
    }

    function _job(uint256 jobId) private view returns (Job storage j) {
        j = jobs[jobId];
        if (j.status == Status.None) revert UnknownJob(jobId);
    }

    /// @notice A job's terms and state.
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _job(jobId);
    }

    /// @notice A job's running dispute (all zero when none).
    function getDispute(uint256 jobId) external view returns (Dispute memory) {
        return disputes[jobId];
    }

    // ---- jobs ----------------------------------------------------------------------------

    /// @notice Post a job of `steps` training steps escrowing `msg.value` as the reward; nodes
    /// may claim it for `claimWindow` seconds. The stake a node locks (and a challenger bonds)
    /// is at least the registry's `minStake` and never below the reward, so that cheating on a
    /// job can never pay more than it risks.
    function postJob(
        bytes32 datasetRoot,
        bytes32 specCid,
        uint64 steps,
        uint32 claimWindow,
        uint32 maxDuration,
        uint32 challengeWindow,
        uint256 requiredStake
    ) external payable returns (uint256 jobId) {
        if (msg.value == 0) revert ZeroAmount();
        if (
            steps == 0 || claimWindow == 0 || maxDuration == 0 || challengeWindow == 0 || requiredStake == 0
                || requiredStake > type(uint128).max
        ) {
            revert BadJobTerms();
        }
        uint256 floor = registry.minStake();
        if (requiredStake < floor) revert StakeBelowFloor(requiredStake, floor);
        Parameters storage p = parameters;
        if (challengeWindow < p.minChallengeWindow || challengeWindow > p.maxChallengeWindow) {
            revert ChallengeWindowOutOfBounds(challengeWindow, p.minChallengeWindow, p.maxChallengeWindow);
        }
        if (msg.value > requiredStake) revert RewardAboveStake(msg.value, requiredStake);
        jobId = ++jobCount;
        Job storage j = jobs[jobId];
        j.requester = msg.sender;
        j.maxDuration = maxDuration;
        j.challengeWindow = challengeWindow;
        j.status = Status.Open;
        j.claimWindow = claimWindow;
        j.deadline = uint64(block.timestamp) + claimWindow;
        j.datasetRoot = datasetRoot;
        j.specCid = specCid;
        j.steps = steps;
        j.reward = msg.value;
        j.requiredStake = requiredStake;
        contributions[jobId][msg.sender] = msg.value;
        emit JobPosted(jobId, msg.sender, datasetRoot, specCid, steps, msg.value);
    }

    /// @notice Add `msg.value` to a job's reward until a result is submitted, up to the
    /// job's required stake.
    function fund(uint256 jobId) external payable {
        Job storage j = _job(jobId);
        if (j.status != Status.Open && j.status != Status.Claimed) revert FundingClosed(jobId);
        if (msg.value == 0) revert ZeroAmount();
        if (j.reward + msg.value > j.requiredStake) revert RewardAboveStake(j.reward + msg.value, j.requiredStake);
        j.reward += msg.value;
        contributions[jobId][msg.sender] += msg.value;
        emit Funded(jobId, msg.sender, msg.value, j.reward);
    }

    /// @notice Withdraw an unclaimed job: the requester at any time, anyone once its claim
    /// window has passed. Funders then take refunds.
    function cancel(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open) revert WrongStatus(jobId, j.status);
        if (msg.sender != j.requester && block.timestamp <= j.deadline) revert NotRequester(jobId, msg.sender);
        j.status = Status.Cancelled;
        emit Cancelled(jobId);
    }

    /// @notice A registered node takes the job, locking `requiredStake` of its free stake.
    function claim(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open) {
            if (j.node != address(0)) revert AlreadyClaimed(jobId, j.node);
            revert WrongStatus(jobId, j.status);
        }
        if (block.timestamp > j.deadline) revert ClaimWindowClosed(jobId, j.deadline);
        uint256 free = registry.freeStake(msg.sender);
        if (free < j.requiredStake) revert InsufficientStake(free, j.requiredStake);
        j.status = Status.Claimed;
        j.node = msg.sender;
        j.deadline = uint64(block.timestamp) + j.maxDuration;
        registry.lock(msg.sender, j.requiredStake);
        emit Claimed(jobId, msg.sender, j.deadline);
    }

    /// @notice The node publishes its training log over the job's `steps` steps: its header
    /// (posted here, so that no one needs the node to serve it; c_0 = `genesis` is its
    /// SHA-256), c_steps (`head`) and `root`, the Merkle root over c_1..c_steps that every
    /// commitment the node posts in a dispute is proven against.
    function submit(uint256 jobId, bytes calldata header, bytes32 head, bytes32 root) external {
        Job storage j = _job(jobId);
        if (msg.sender != j.node) revert NotJobNode(jobId, msg.sender);
        if (j.status != Status.Claimed) revert WrongStatus(jobId, j.status);
        if (block.timestamp > j.deadline) revert SubmitDeadlinePassed(jobId, j.deadline);
        bytes32 genesis = sha256(header);
        if (head == bytes32(0) || root == bytes32(0) || genesis == head) revert InvalidResult();
        j.genesis = genesis;
        j.head = head;
        j.root = root;
        j.status = Status.Submitted;
        j.deadline = uint64(block.timestamp) + j.challengeWindow;
        emit Submitted(jobId, genesis, head, root, j.deadline, header);
    }

    /// @notice A claimed job whose node missed its submit deadline: the node's locked stake goes
    /// to the requester and the job is open again for a fresh claim window.
    function expire(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Claimed) revert WrongStatus(jobId, j.status);
        if (block.timestamp <= j.deadline) revert NotExpired(jobId, j.deadline);
        address node = j.node;
        uint256 stake = j.requiredStake;
        j.status = Status.Open;
        j.node = address(0);
        j.deadline = uint64(block.timestamp) + j.claimWindow;
        owed[j.requester] += stake;
        emit Expired(jobId, node, stake);
        registry.slash(node, stake);
    }

    /// @notice After an unchallenged window the node is paid and its stake unlocked.
    function finalize(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status == Status.Paid) revert AlreadyFinalized(jobId);
        if (j.status != Status.Submitted) revert WrongStatus(jobId, j.status);
        if (block.timestamp < j.deadline) revert ChallengeWindowOpen(jobId, j.deadline);
        _noRequest(jobId);
        j.status = Status.Paid;
        owed[j.node] += j.reward;
        emit Finalized(jobId, j.node, j.reward);
        registry.unlock(j.node, j.requiredStake);
    }

    /// @notice A funder of a cancelled job, or of one whose node was slashed, takes back its
    /// contribution (credited; `withdraw` pays).
    function refund(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Cancelled && j.status != Status.Slashed) revert NotRefundable(jobId, j.status);
        uint256 amount = contributions[jobId][msg.sender];
        if (amount == 0) revert NothingToRefund(jobId);
        contributions[jobId][msg.sender] = 0;
        owed[msg.sender] += amount;
        emit Refunded(jobId, msg.sender, amount);
    }

    /// @notice Pay out everything credited to the caller.
    function withdraw() external {
        _withdraw(payable(msg.sender));
    }

    /// @notice Pay out everything credited to the caller to `to` (for accounts that cannot
    /// receive ether themselves, such as contracts without a `receive`).
    function withdrawTo(address payable to) external {
        _withdraw(to);
    }

    function _withdraw(address payable to) private nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        owed[msg.sender] = 0;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---- disputes ------------------------------------------------------------------------

    /// @notice Challenge a submission within its window, bonding at least `requiredStake` and
    /// claiming `challengerFinal` as the true c_steps.
    function challenge(uint256 jobId, bytes32 challengerFinal) external payable {
        Job storage j = _job(jobId);
        if (challengerFinal == j.head) revert SameClaim();
        Dispute storage d = _open(jobId, j);
        d.lo = 0;
        d.hi = j.steps;
        emit Challenged(jobId, msg.sender, challengerFinal, uint128(msg.value));
        _nextRound(jobId, d, 0, j.steps);
    }

    /// @notice Challenge a submission on its face, without bisection: its log does not answer
    /// the job's terms (another step count, spec, dataset or compute class). The adjudicator
    /// decides the case `caseOf(jobId, TERMS, genesis, head)` at once; the endings are those of
    /// a step case (a log that does answer the terms wins the bond).
    function challengeTerms(uint256 jobId) external payable {
        Job storage j = _job(jobId);
        Dispute storage d = _open(jobId, j);
        d.lo = TERMS;
        d.hi = TERMS;
        d.turn = Turn.Adjudication;
        d.deadline = uint64(block.timestamp) + parameters.adjudicationTimeout;
        emit Challenged(jobId, msg.sender, bytes32(0), uint128(msg.value));
        emit TermsDisputed(jobId, caseOf(jobId, TERMS, j.genesis, j.head), j.genesis, j.head);
    }

    /// Open a dispute on a submitted job within its window, bonding `msg.value`.
    function _open(uint256 jobId, Job storage j) private returns (Dispute storage d) {
        if (j.status != Status.Submitted) revert WrongStatus(jobId, j.status);
        if (block.timestamp >= j.deadline) revert ChallengeWindowClosed(jobId, j.deadline);
        if (msg.value < j.requiredStake) revert BondTooLow(msg.value, j.requiredStake);
        _noRequest(jobId);
        j.status = Status.Disputed;
        d = disputes[jobId];
        d.challenger = msg.sender;
        d.bond = uint128(msg.value);
        d.agreed = j.genesis;
        d.nodeHi = j.head;
    }

    /// @notice One bisection move. On the node's turn it posts its c_mid; on the challenger's
    /// turn it posts its own c_mid: equal means both agree up to mid, different means they
    /// already disagree there. `mid = lo + (hi - lo) / 2`. Only the challenger's moves emit
    /// `Bisected` (the node's commitment is in its transaction and in `getDispute`). The
    /// node's commitments are proven against its root only where the verdict rests on them
    /// (`reveal`): one posted off its log can steer the game, but the game then ends on a pair
    /// the node cannot prove, and it loses.
    function bisect(uint256 jobId, bytes32 commitment) external {
        Dispute storage d = disputes[jobId];
        if (d.challenger == address(0)) revert NoDispute(jobId);
        Turn turn = d.turn;
        address mover = _mover(jobId, d);
        if (msg.sender != mover || turn == Turn.Reveal || turn == Turn.Adjudication) {
            revert NotYourTurn(jobId, mover);
        }
        if (block.timestamp > d.deadline) revert MoveTimedOut(jobId, d.deadline);
        uint64 lo = d.lo;
        uint64 hi = d.hi;
        uint64 mid = lo + (hi - lo) / 2;
        if (turn == Turn.Node) {
            d.nodeMid = commitment;
            d.turn = Turn.Challenger;
            d.deadline = uint64(block.timestamp) + parameters.moveTimeout;
            return;
        }
        bytes32 nodeMid = d.nodeMid;
        if (commitment == nodeMid) {
            d.agreed = nodeMid;
            lo = mid;
        } else {
            d.nodeHi = nodeMid;
            hi = mid;
        }
        _nextRound(jobId, d, lo, hi);
    }

    /// Who the dispute waits for.
    function _mover(uint256 jobId, Dispute storage d) private view returns (address) {
        Turn turn = d.turn;
        if (turn == Turn.Challenger) return d.challenger;
        if (turn == Turn.Adjudication) return address(adjudicator);
        return jobs[jobId].node;
    }

    function _nextRound(uint256 jobId, Dispute storage d, uint64 lo, uint64 hi) private {
        d.lo = lo;
        d.hi = hi;
        if (hi - lo == 1) {
            // the step is found: the node posts the record behind its c_hi, then the referees
            d.turn = Turn.Reveal;
            d.deadline = uint64(block.timestamp) + parameters.moveTimeout;
        } else {
            d.turn = Turn.Node;
            d.deadline = uint64(block.timestamp) + parameters.moveTimeout;
        }
        emit Bisected(jobId, lo, hi, d.turn);
    }

    /// @notice The node's last move in a step dispute: post `record`, the block whose SHA-256
    /// is its disputed c_(lo+1), so that the referees judge the step from the chain and from the
    /// agreed prefix (which the honest side holds), never from a block only the node could
    /// withhold; and prove that c_lo and c_(lo+1) are its submitted log's, the siblings of
    /// leaves lo-1 (`agreedProof`, empty for lo = 0: c_0 is the genesis) and lo (`hiProof`,
    /// empty for the last step: c_steps is the head) under its root. A node that cannot, or
    /// does not in time, loses by timeout.
    function reveal(uint256 jobId, bytes calldata record, bytes32[] calldata agreedProof, bytes32[] calldata hiProof)
        external
    {
        Dispute storage d = disputes[jobId];
        if (d.challenger == address(0)) revert NoDispute(jobId);
        address mover = _mover(jobId, d);
        if (msg.sender != mover || d.turn != Turn.Reveal) revert NotYourTurn(jobId, mover);
        if (block.timestamp > d.deadline) revert MoveTimedOut(jobId, d.deadline);
        bytes32 nodeHi = d.nodeHi;
        if (sha256(record) != nodeHi) revert BadReveal(jobId, nodeHi);
        _proveEnds(jobId, d, agreedProof, hiProof);
        uint64 lo = d.lo;
        bytes32 agreed = d.agreed;
        d.turn = Turn.Adjudication;
        d.deadline = uint64(block.timestamp) + parameters.adjudicationTimeout;
        emit Revealed(jobId, lo, nodeHi, record);
        emit StepDisputed(jobId, caseOf(jobId, lo, agreed, nodeHi), lo, agreed, nodeHi);
    }

    /// Check that the disputed step's c_lo and c_(lo+1) are leaves lo-1 and lo of the root.
    function _proveEnds(uint256 jobId, Dispute storage d, bytes32[] calldata agreedProof, bytes32[] calldata hiProof)
        private
        view
    {
        Job storage j = jobs[jobId];
        uint64 lo = d.lo;
        uint64 steps = j.steps;
        if (lo > 0 && leafRoot(d.agreed, lo - 1, steps, agreedProof) != j.root) revert BadProof(jobId, lo);
        if (lo + 1 < steps && leafRoot(d.nodeHi, lo, steps, hiProof) != j.root) revert BadProof(jobId, lo + 1);
    }

    /// @notice The Merkle root that `proof` gives for `item` at `index` of `count` items, by
    /// the rules of `oai_core::merkle` (leaf = SHA-256(0x00 || item), node = SHA-256(0x01 ||
    /// left || right), a level's odd last node promoted unchanged); zero for a malformed proof.
    function leafRoot(bytes32 item, uint64 index, uint64 count, bytes32[] calldata proof)
        public
        view
        returns (bytes32 acc)
    {
        if (index >= count) return bytes32(0);
        acc = _sha256(0x00, item, 0, 33);
        uint256 used;
        while (count > 1) {
            if (index ^ 1 < count) {
                if (used == proof.length) return bytes32(0);
                bytes32 s = proof[used++];
                acc = index & 1 == 0 ? _sha256(0x01, acc, s, 65) : _sha256(0x01, s, acc, 65);
            }
            index >>= 1;
            count = (count + 1) / 2;
        }
        if (used != proof.length) return bytes32(0);
    }

    /// SHA-256 of the first `len` bytes of `tag || a || b`, hashed in scratch memory past the
    /// free memory pointer (the precompile at 0x02; no allocation per hash).
    function _sha256(uint8 tag, bytes32 a, bytes32 b, uint256 len) private view returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, tag)
            mstore(add(ptr, 1), a)
            mstore(add(ptr, 33), b)
            if iszero(staticcall(gas(), 2, ptr, len, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @notice The case id the adjudicator decides: is `nodeAfter` what step `step` of job
    /// `jobId` gives from `before`?
    function caseOf(uint256 jobId, uint64 step, bytes32 before, bytes32 nodeAfter) public view returns (bytes32) {
        return keccak256(abi.encode(address(this), jobId, step, before, nodeAfter));
    }

    /// @notice Apply the adjudicator's verdict on the disputed step.
    function resolve(uint256 jobId) external {
        Dispute storage d = disputes[jobId];
        if (d.challenger == address(0)) revert NoDispute(jobId);
        if (d.turn != Turn.Adjudication) revert WrongStatus(jobId, Status.Disputed);
        bytes32 caseId = caseOf(jobId, d.lo, d.agreed, d.nodeHi);
        IStepAdjudicator.Verdict v = adjudicator.verdict(caseId);
        if (v == IStepAdjudicator.Verdict.Pending) revert NoVerdict(jobId, caseId);
        _settle(jobId, d, v == IStepAdjudicator.Verdict.NodeCorrect, false);
    }

    /// @notice End a dispute whose mover missed its deadline: that side loses. A step the
    /// adjudicator never decided voids the dispute instead (bond back, window restarts); one it
    /// has decided is settled by the verdict, whoever calls.
    function timeout(uint256 jobId) external {
        Dispute storage d = disputes[jobId];
        if (d.challenger == address(0)) revert NoDispute(jobId);
        if (block.timestamp <= d.deadline) revert NotTimedOut(jobId, d.deadline);
        if (d.turn == Turn.Adjudication) {
            bytes32 caseId = caseOf(jobId, d.lo, d.agreed, d.nodeHi);
            IStepAdjudicator.Verdict v = adjudicator.verdict(caseId);
            if (v != IStepAdjudicator.Verdict.Pending) {
                _settle(jobId, d, v == IStepAdjudicator.Verdict.NodeCorrect, false);
                return;
            }
            Job storage j = jobs[jobId];
            owed[d.challenger] += d.bond;
            delete disputes[jobId];
            j.status = Status.Submitted;
            j.deadline = uint64(block.timestamp) + j.challengeWindow;
            emit DisputeVoided(jobId, caseId);
            return;
        }
        _settle(jobId, d, d.turn == Turn.Challenger, true);
    }

    function _settle(uint256 jobId, Dispute storage d, bool nodeWon, bool byTimeout) private {
        Job storage j = jobs[jobId];
        address challenger = d.challenger;
        uint256 bond = d.bond;
        delete disputes[jobId];
        if (nodeWon) {
            // the challenger forfeits its bond: part is burned, the node takes the rest; the
            // submission stands and may be challenged again
            uint256 burn = bond * parameters.burnBps / 10000;
            burned += burn;
            owed[j.node] += bond - burn;
            j.status = Status.Submitted;
            j.deadline = uint64(block.timestamp) + j.challengeWindow;
            emit DisputeResolved(jobId, j.node, true, byTimeout);
            emit Burned(jobId, burn);
        } else {
            emit DisputeResolved(jobId, challenger, false, byTimeout);
            _slashNode(jobId, j, challenger, bond);
        }
    }

    /// The node cheated or withheld: its locked stake is forfeited, part burned, the rest and
    /// `deposit` (the winner's own bond back) to `winner`; funders refund.
    function _slashNode(uint256 jobId, Job storage j, address winner, uint256 deposit) private {
        uint256 stake = j.requiredStake;
        uint256 burn = stake * parameters.burnBps / 10000;
        burned += burn;
        j.status = Status.Slashed;
        owed[winner] += deposit + stake - burn;
        emit Burned(jobId, burn);
        registry.slash(j.node, stake);
    }

    // ---- data requests -------------------------------------------------------------------

    function _noRequest(uint256 jobId) private view {
        Request storage q = requests[jobId];
        if (q.by != address(0)) revert DataRequested(jobId, q.index);
    }

    /// @notice Within the challenge window, ask the node to post record `index` of its
    /// submitted log (the block whose SHA-256 is c_(index+1)) on chain, bonding at least
    /// `DATA_BOND_BPS` of the required stake: an auditor that cannot fetch a record the node
    /// does not serve gets it this way. One request at a time, and no dispute while it runs;
    /// the node answers within the move timeout (`answerData`: the bond pays it) or is slashed
    /// (`timeoutData`: the bond back and the winner's share of its stake to the requester).
    function requestData(uint256 jobId, uint64 index) external payable {
        Job storage j = _job(jobId);
        if (j.status != Status.Submitted) revert WrongStatus(jobId, j.status);
        if (block.timestamp >= j.deadline) revert ChallengeWindowClosed(jobId, j.deadline);
        if (index >= j.steps) revert BadIndex(jobId, index);
        _noRequest(jobId);
        uint256 bond = j.requiredStake * DATA_BOND_BPS / 10000;
        if (msg.value < bond || msg.value > type(uint128).max) revert BondTooLow(msg.value, bond);
        uint64 deadline = uint64(block.timestamp) + parameters.moveTimeout;
        requests[jobId] = Request(msg.sender, deadline, index, uint128(msg.value));
        emit DataRequest(jobId, msg.sender, index, uint128(msg.value), deadline);
    }

    /// @notice The running data request of a job (all zero when none).
    function getRequest(uint256 jobId) external view returns (Request memory) {
        return requests[jobId];
    }

    /// @notice The node answers a data request: `record`, proven at its index against the
    /// result's root by `proof`. The bond pays the node; the challenge window runs at least
    /// one more move timeout, so auditors can use what was posted.
    function answerData(uint256 jobId, bytes calldata record, bytes32[] calldata proof) external {
        Request memory q = requests[jobId];
        if (q.by == address(0)) revert NoDataRequest(jobId);
        Job storage j = jobs[jobId];
        if (msg.sender != j.node) revert NotJobNode(jobId, msg.sender);
        if (block.timestamp > q.deadline) revert MoveTimedOut(jobId, q.deadline);
        bytes32 c = sha256(record);
        if (leafRoot(c, q.index, j.steps, proof) != j.root) revert BadProof(jobId, q.index + 1);
        delete requests[jobId];
        owed[j.node] += q.bond;
        uint64 until = uint64(block.timestamp) + parameters.moveTimeout;
        if (j.deadline < until) j.deadline = until;
        emit DataAnswered(jobId, q.index, c, record);
    }

    /// @notice A data request the node left unanswered past its deadline: the node is slashed,
    /// the requester takes its bond back and the winner's share of the stake (anyone may call).
    function timeoutData(uint256 jobId) external {
        Request memory q = requests[jobId];
        if (q.by == address(0)) revert NoDataRequest(jobId);
        if (block.timestamp <= q.deadline) revert NotTimedOut(jobId, q.deadline);
        delete requests[jobId];
        emit DataWithheld(jobId, q.by, q.index);
        _slashNode(jobId, jobs[jobId], q.by, q.bond);
    }
}
