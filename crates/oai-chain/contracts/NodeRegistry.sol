// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title NodeRegistry: training nodes bond stake; the market locks and slashes it.
/// @notice A node registers with at least `minStake`, may top up, and unbonds free stake with a
/// delay. Only the market (set once) locks stake for a claimed job, unlocks it, or slashes it;
/// slashed wei go to the market, which credits the winner. Payouts are pulled by the node.
/// The governor (a `TrainingDAO`, set once; none: nothing changes) sets the stake floor and
/// who may work: registration is open to all, or only to nodes it admitted; a node whose
/// admission it withdraws claims no new job.
contract NodeRegistry {
    struct Node {
        uint256 stake; // bonded wei, locked part included
        uint256 locked; // wei locked by the market for claimed jobs
        uint256 unbonding; // wei leaving the bond, paid out by `withdraw` after `unbondAt`
        uint64 unbondAt;
        bool registered;
    }

    error StakeTooLow(uint256 sent, uint256 minimum);
    error AlreadyRegistered(address node);
    error NotRegistered(address node);
    error InsufficientFreeStake(uint256 free, uint256 requested);
    error NotMarket(address caller);
    error MarketAlreadySet(address market);
    error NotDeployer(address caller);
    error UnbondingNotReady(uint64 readyAt);
    error NotGovernor(address caller);
    error GovernorAlreadySet(address governor);
    error NotAdmitted(address node);
    error NothingToWithdraw();
    error TransferFailed();
    error Reentrancy();

    event Registered(address indexed node, uint256 stake);
    event ToppedUp(address indexed node, uint256 amount, uint256 stake);
    event UnbondRequested(address indexed node, uint256 amount, uint64 readyAt);
    event Withdrawn(address indexed node, address to, uint256 amount);
    event Locked(address indexed node, uint256 amount);
    event Unlocked(address indexed node, uint256 amount);
    event Slashed(address indexed node, uint256 amount);
    event MarketSet(address market);
    event GovernorSet(address governor);
    event MinStakeSet(uint256 minStake);
    event AdmissionSet(bool open);
    event AdmittedSet(address indexed node, bool admitted);

    /// @notice The least stake a node registers with; also the floor of every job's required
    /// stake (and so of every challenger's bond).
    uint256 public minStake;
    uint64 public immutable unbondDelay;
    address private immutable deployer;
    address public market;
    address public governor;
    /// Whether `setGovernor` was called (with the zero address: the rules are final).
    bool private governorFixed;
    /// @notice Whether any node may register and claim (else only admitted ones).
    bool public open = true;
    mapping(address => bool) public admitted;
    mapping(address => Node) public nodes;
    uint256 private entered = 1;

    constructor(uint256 minStake_, uint64 unbondDelay_) {
        if (minStake_ == 0) revert StakeTooLow(0, 1);
        minStake = minStake_;
        unbondDelay = unbondDelay_;
        deployer = msg.sender;
    }

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    modifier nonReentrant() {
        if (entered != 1) revert Reentrancy();
        entered = 2;
        _;
        entered = 1;
    }

    /// @notice Point the registry at its market, once, by the deployer.
    function setMarket(address market_) external {
        if (market != address(0)) revert MarketAlreadySet(market);
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        market = market_;
        emit MarketSet(market_);
    }

    modifier onlyGovernor() {
        if (msg.sender != governor || governor == address(0)) revert NotGovernor(msg.sender);
        _;
    }

    /// @notice Hand the registry's rules to `governor_`, once, by the deployer (the zero address
    /// fixes them for good).
    function setGovernor(address governor_) external {
        if (governorFixed) revert GovernorAlreadySet(governor);
        governorFixed = true;
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        governor = governor_;
        emit GovernorSet(governor_);
    }

    /// @notice The governor sets the stake floor (> 0); registered stakes are not touched.
    function setMinStake(uint256 minStake_) external onlyGovernor {
        if (minStake_ == 0) revert StakeTooLow(0, 1);
        minStake = minStake_;
        emit MinStakeSet(minStake_);
    }

    /// @notice The governor opens registration to all, or closes it to admitted nodes only.
    function setOpen(bool open_) external onlyGovernor {
        open = open_;
        emit AdmissionSet(open_);
    }

    /// @notice The governor admits `node` (or withdraws its admission).
    function setAdmitted(address node, bool admitted_) external onlyGovernor {
        admitted[node] = admitted_;
        emit AdmittedSet(node, admitted_);
    }

    /// @notice Whether `node` may register and claim jobs now.
    function mayWork(address node) public view returns (bool) {
        return open || admitted[node];
    }

    /// @notice Register the caller with `msg.value` as stake (at least `minStake`).
    function register() external payable {
        Node storage n = nodes[msg.sender];
        if (n.registered) revert AlreadyRegistered(msg.sender);
        if (!mayWork(msg.sender)) revert NotAdmitted(msg.sender);
        if (msg.value < minStake) revert StakeTooLow(msg.value, minStake);
        n.registered = true;
        n.stake = msg.value;
        emit Registered(msg.sender, msg.value);
    }

    /// @notice Add `msg.value` to the caller's stake.
    function topUp() external payable {
        Node storage n = nodes[msg.sender];
        if (!n.registered) revert NotRegistered(msg.sender);
        n.stake += msg.value;
        emit ToppedUp(msg.sender, msg.value, n.stake);
    }

    /// @notice Stake that is neither locked nor unbonding.
    function freeStake(address node) public view returns (uint256) {
        Node storage n = nodes[node];
        return n.stake - n.locked;
    }

    /// @notice Start unbonding `amount` of free stake; `withdraw` pays it after `unbondDelay`.
    /// A new request restarts the delay for everything still unbonding.
    function requestUnbond(uint256 amount) external {
        Node storage n = nodes[msg.sender];
        if (!n.registered) revert NotRegistered(msg.sender);
        uint256 free = n.stake - n.locked;
        if (amount == 0 || amount > free) revert InsufficientFreeStake(free, amount);
        n.stake -= amount;
        n.unbonding += amount;
        n.unbondAt = uint64(block.timestamp) + unbondDelay;
        emit UnbondRequested(msg.sender, amount, n.unbondAt);
    }

    /// @notice Pay out the caller's unbonded stake once its delay has passed.
    function withdraw() external {
        _withdraw(payable(msg.sender));
    }

    /// @notice Pay out the caller's unbonded stake to `to` (for nodes that cannot receive
    /// ether themselves).
    function withdrawTo(address payable to) external {
        _withdraw(to);
    }

    function _withdraw(address payable to) private nonReentrant {
        Node storage n = nodes[msg.sender];
        uint256 amount = n.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < n.unbondAt) revert UnbondingNotReady(n.unbondAt);
        n.unbonding = 0;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice Lock `amount` of `node`'s free stake for a claimed job (market only).
    function lock(address node, uint256 amount) external onlyMarket {
        Node storage n = nodes[node];
        if (!n.registered) revert NotRegistered(node);
        if (!mayWork(node)) revert NotAdmitted(node);
        uint256 free = n.stake - n.locked;
        if (amount > free) revert InsufficientFreeStake(free, amount);
        n.locked += amount;
        emit Locked(node, amount);
    }

    /// @notice Release `amount` of `node`'s locked stake (market only).
    function unlock(address node, uint256 amount) external onlyMarket {
        nodes[node].locked -= amount;
        emit Unlocked(node, amount);
    }

    /// @notice Take `amount` of `node`'s locked stake and send it to the market (market only).
    function slash(address node, uint256 amount) external onlyMarket nonReentrant {
        Node storage n = nodes[node];
        n.locked -= amount;
        n.stake -= amount;
        emit Slashed(node, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
