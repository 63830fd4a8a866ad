// SPDX-License-Identifier: Apache-2.0 OR MIT
pragma solidity 0.8.30;

/// @title ReentrantFunder: a test attacker that funds a job and, when paid, re-enters the
/// market's `withdraw` (and `refund`) to be paid twice. It records what the re-entry got.
contract ReentrantFunder {
    address public immutable market;
    uint256 public received;
    uint256 public payments;
    bool public reentrySucceeded;
    bytes public reentryError;
    uint256 private job;

    constructor(address market_) {
        market = market_;
    }

    function fund(uint256 jobId) external payable {
        job = jobId;
        (bool ok, bytes memory err) = market.call{value: msg.value}(abi.encodeWithSignature("fund(uint256)", jobId));
        if (!ok) _bubble(err);
    }

    function refundAndWithdraw() external {
        (bool ok, bytes memory err) = market.call(abi.encodeWithSignature("refund(uint256)", job));
        if (!ok) _bubble(err);
        (ok, err) = market.call(abi.encodeWithSignature("withdraw()"));
        if (!ok) _bubble(err);
    }

    receive() external payable {
        received += msg.value;
        payments += 1;
        if (payments == 1) {
            (bool ok, bytes memory err) = market.call(abi.encodeWithSignature("withdraw()"));
            reentrySucceeded = ok;
            reentryError = err;
        }
    }

    function _bubble(bytes memory err) private pure {
        assembly {
            revert(add(err, 32), mload(err))
        }
    }
}
