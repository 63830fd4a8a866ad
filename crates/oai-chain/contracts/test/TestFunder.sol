// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title TestFunder: a contract account that funds market jobs, for tests. With `rejectEther`
/// it has no way to receive ether (its payout must go elsewhere with `withdrawTo`); without, it
/// is an attacker whose `receive` re-enters the market's `withdraw` to be paid twice, and
/// records what the re-entry got.
contract TestFunder {
    address public immutable market;
    bool public immutable rejectEther;
    uint256 public received;
    uint256 public payments;
    bool public reentrySucceeded;
    bytes public reentryError;

    error EtherRejected();

    constructor(address market_, bool rejectEther_) {
        market = market_;
        rejectEther = rejectEther_;
    }

    function fund(uint256 jobId) external payable {
        _call(abi.encodeWithSignature("fund(uint256)", jobId), msg.value);
    }

    function refund(uint256 jobId) external {
        _call(abi.encodeWithSignature("refund(uint256)", jobId), 0);
    }

    function withdraw() external {
        _call(abi.encodeWithSignature("withdraw()"), 0);
    }

    function withdrawTo(address to) external {
        _call(abi.encodeWithSignature("withdrawTo(address)", to), 0);
    }

    receive() external payable {
        if (rejectEther) revert EtherRejected();
        received += msg.value;
        payments += 1;
        if (payments == 1) {
            (bool ok, bytes memory err) = market.call(abi.encodeWithSignature("withdraw()"));
            reentrySucceeded = ok;
            reentryError = err;
        }
    }

    function _call(bytes memory data, uint256 value) private {
        (bool ok, bytes memory err) = market.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(err, 32), mload(err))
            }
        }
    }
}
