// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// Benchmark baseline: Unlock Protocol's PublicLock (v14), compiled from the npm package
// @unlock-protocol/contracts and deployed directly (no Unlock factory, no proxy), then
// `initialize`d by the deployer, who becomes its lock manager.
import {PublicLock} from "@unlock-protocol/contracts/dist/PublicLock/PublicLockV14.sol";

/// @notice Names the PublicLock artifact after this file so `ctx.deploy_forge` finds it.
contract BaselinePublicLock is PublicLock {}
