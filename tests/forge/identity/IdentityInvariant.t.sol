// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {freeNonce} from "../lib/FreeNonce.sol";
import {Test} from "../lib/Test.sol";
import {AftermarketDevice} from "../../../contracts/identity/AftermarketDevice.sol";
import {VehicleId} from "../../../contracts/identity/VehicleId.sol";
import {Permissions} from "../../../contracts/libraries/Permissions.sol";

/// @notice Drives random sequences of mints, burns, transfers, grants (by owners and managers),
///         revokes, ERC-4907 users, device mints, transfers, pairings and time, keeping a ghost
///         copy of what every key, user, generation and pairing must be.
contract IdentityHandler is Test {
    bytes32 internal constant PAIR_TYPEHASH =
        keccak256("Pair(uint256 vehicleId,uint256 deviceId,uint256 nonce,uint256 deadline)");
    uint256 internal constant ACTORS = 5;
    uint256 internal constant VINS = 6;
    uint256 internal constant DEVICE_KEYS = 4;
    uint256 internal constant MAX_TTL = 3 days;

    VehicleId public immutable vehicles;
    AftermarketDevice public immutable devices;
    address internal immutable minter;
    address internal immutable manufacturer;
    uint256 internal immutable connectionId;

    address[] public actors;
    bytes32[] public vins;
    uint256[] internal deviceKeys;

    struct GhostKey {
        uint64 generation;
        uint64 expiresAt;
        uint256 bits;
        // the key manager that granted it (zero: the owner) and that manager's epoch then
        address manager;
        uint64 managerEpoch;
    }

    struct GhostUser {
        address user;
        uint64 generation;
        uint64 expires;
    }

    // ghost state: what the contracts must say
    mapping(uint256 vehicleId => mapping(address => GhostKey)) public ghostKey;
    /// @dev A manager's epoch moves when it stops managing keys (revoked, or re-granted without
    ///      MANAGE_KEYS): every key it granted before stops counting.
    mapping(uint256 vehicleId => mapping(address manager => uint64)) public ghostManagerEpoch;
    mapping(uint256 vehicleId => GhostUser) public ghostUser;
    mapping(uint256 vehicleId => uint64) public ghostGeneration;
    mapping(uint256 vehicleId => bool) public ghostLive;
    mapping(uint256 vehicleId => bytes32) public ghostVin;
    mapping(uint256 vehicleId => uint256) public ghostDeviceOf;
    mapping(uint256 deviceId => uint256) public ghostVehicleOf;
    uint256 public vehiclesMinted;
    uint256 public devicesMinted;
    uint256 public transfers;
    uint256 public grants;
    uint256 public managerGrantsRefused;
    uint256 public managersVoided;
    uint256 public pairings;
    uint256 public calls;

    constructor(VehicleId vehicles_, AftermarketDevice devices_, address minter_, address manufacturer_, uint256 c) {
        vehicles = vehicles_;
        devices = devices_;
        minter = minter_;
        manufacturer = manufacturer_;
        connectionId = c;
        for (uint256 i; i < ACTORS; ++i) {
            actors.push(makeAddr(string.concat("actor ", vm.toString(i))));
        }
        for (uint256 i; i < VINS; ++i) {
            vins.push(keccak256(abi.encodePacked("VIN", i)));
        }
        for (uint256 i; i < DEVICE_KEYS; ++i) {
            (, uint256 key) = makeAccount(string.concat("device key ", vm.toString(i)));
            deviceKeys.push(key);
        }
    }

    /// @notice Checks made inside actions; an assertion there would only revert the call (and
    ///         reverted calls are not failures), so a broken expectation is recorded instead.
    uint256 public violations;
    string public lastViolation;

    function _expect(bool condition, string memory what) internal {
        if (!condition) {
            ++violations;
            lastViolation = what;
        }
    }

    modifier counted() {
        ++calls;
        _;
    }

    // ------------------------------------------------------------------ helpers

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % ACTORS];
    }

    /// @dev A live vehicle picked by `seed`, or 0 when none lives.
    function _liveVehicle(uint256 seed) internal view returns (uint256) {
        if (vehiclesMinted == 0) return 0;
        for (uint256 i; i < vehiclesMinted; ++i) {
            uint256 id = (seed % vehiclesMinted + i) % vehiclesMinted + 1;
            if (ghostLive[id]) return id;
        }
        return 0;
    }

    function _liveKeyBits(uint256 vehicleId, address account) internal view returns (uint256, uint64) {
        GhostKey memory k = ghostKey[vehicleId][account];
        if (k.generation != ghostGeneration[vehicleId] || block.timestamp >= k.expiresAt) return (0, 0);
        if (k.manager != address(0) && ghostManagerEpoch[vehicleId][k.manager] != k.managerEpoch) return (0, 0);
        return (k.bits, k.expiresAt);
    }

    function _bump(uint256 vehicleId) internal {
        ++ghostGeneration[vehicleId];
        uint256 d = ghostDeviceOf[vehicleId];
        if (d != 0) {
            delete ghostVehicleOf[d];
            delete ghostDeviceOf[vehicleId];
        }
    }

    // ------------------------------------------------------------------ vehicle actions

    function mint(uint256 toSeed, uint256 vinSeed) external counted {
        bytes32 vin = vins[vinSeed % VINS];
        if (vehicles.vehicleOfVin(vin) != 0) return;
        vm.prank(minter);
        uint256 id = vehicles.mint(_actor(toSeed), connectionId, vin);
        vehiclesMinted = id;
        ghostLive[id] = true;
        ghostVin[id] = vin;
        ++ghostGeneration[id];
    }

    function burn(uint256 vehicleSeed) external counted {
        uint256 id = _liveVehicle(vehicleSeed);
        if (id == 0) return;
        vm.prank(vehicles.ownerOf(id));
        vehicles.burn(id);
        ghostLive[id] = false;
        _bump(id);
    }

    function transfer(uint256 vehicleSeed, uint256 toSeed) external counted {
        uint256 id = _liveVehicle(vehicleSeed);
        if (id == 0) return;
        address from = vehicles.ownerOf(id);
        vm.prank(from);
        vehicles.transferFrom(from, _actor(toSeed), id);
        ++transfers;
        _bump(id);
        // Immediately after the transfer nobody but the new owner holds anything.
        for (uint256 i; i < ACTORS; ++i) {
            if (actors[i] != _actor(toSeed)) _expect(vehicles.permissionsOf(id, actors[i]) == 0, "stale holder");
        }
    }

    function grant(uint256 vehicleSeed, uint256 granteeSeed, uint256 bits, uint256 ttl) external counted {
        uint256 id = _liveVehicle(vehicleSeed);
        if (id == 0) return;
        address owner = vehicles.ownerOf(id);
        address grantee = _actor(granteeSeed);
        if (grantee == owner) return;
        bits = bound(bits, 1, Permissions.ALL);
        uint64 expiresAt = uint64(block.timestamp + bound(ttl, 1, MAX_TTL));
        (uint256 replaced,) = _liveKeyBits(id, grantee);
        vm.prank(owner);
        vehicles.grant(id, grantee, bits, expiresAt, bytes32(0));
        ghostKey[id][grantee] = GhostKey(ghostGeneration[id], expiresAt, bits, address(0), 0);
        if (replaced & Permissions.MANAGE_KEYS != 0 && bits & Permissions.MANAGE_KEYS == 0) {
            ++ghostManagerEpoch[id][grantee];
            ++managersVoided;
        }
        ++grants;
    }

    function managerGrant(uint256 vehicleSeed, uint256 managerSeed, uint256 granteeSeed, uint256 bits, uint256 ttl)
        external
        counted
    {
        uint256 id = _liveVehicle(vehicleSeed);
        if (id == 0) return;
        address owner = vehicles.ownerOf(id);
        address manager = _actor(managerSeed);
        address grantee = _actor(granteeSeed);
        if (manager == owner || grantee == owner) return;
        bits = bound(bits, 1, Permissions.ALL);
        uint64 expiresAt = uint64(block.timestamp + bound(ttl, 1, MAX_TTL));
        vm.prank(manager);
        try vehicles.grant(id, grantee, bits, expiresAt, bytes32(0)) {
            (uint256 managerBits, uint64 managerEnd) = _liveKeyBits(id, manager);
            (uint256 previous,) = _liveKeyBits(id, grantee);
            _expect(managerBits & Permissions.MANAGE_KEYS != 0, "granted without MANAGE_KEYS");
            _expect(bits & Permissions.MANAGE_KEYS == 0, "MANAGE_KEYS passed on");
            _expect(Permissions.includes(managerBits, bits), "grantee exceeds manager");
            _expect(expiresAt <= managerEnd, "grantee outlives manager");
            _expect(Permissions.includes(managerBits, previous), "manager replaced a stronger key");
            ghostKey[id][grantee] =
                GhostKey(ghostGeneration[id], expiresAt, bits, manager, ghostManagerEpoch[id][manager]);
            ++grants;
        } catch {
            ++managerGrantsRefused;
        }
    }

    function revoke(uint256 vehicleSeed, uint256 granteeSeed) external counted {
        uint256 id = _liveVehicle(vehicleSeed);
        if (id == 0) return;
        address grantee = _actor(granteeSeed);
        if (ghostKey[id][grantee].generation != ghostGeneration[id]) return;
        (uint256 revoked,) = _liveKeyBits(id, grantee);
        vm.prank(vehicles.ownerOf(id));
        vehicles.revoke(id, grantee);
        delete ghostKey[id][grantee];
        if (revoked & Permissions.MANAGE_KEYS != 0) {
            ++ghostManagerEpoch[id][grantee];
            ++managersVoided;
        }
    }

    function setUser(uint256 vehicleSeed, uint256 userSeed, uint256 ttl) external counted {
        uint256 id = _liveVehicle(vehicleSeed);
        if (id == 0) return;
        address user = _actor(userSeed);
        uint64 expires = uint64(block.timestamp + bound(ttl, 0, MAX_TTL));
        vm.prank(vehicles.ownerOf(id));
        vehicles.setUser(id, user, expires);
        ghostUser[id] = GhostUser(user, ghostGeneration[id], expires);
    }

    function warp(uint256 seconds_) external counted {
        vm.warp(block.timestamp + bound(seconds_, 0, 1 days));
    }

    // ------------------------------------------------------------------ device actions

    function mintDevice(uint256 toSeed) external counted {
        if (devicesMinted == DEVICE_KEYS) return;
        address signer = vm.addr(deviceKeys[devicesMinted]);
        vm.prank(manufacturer);
        devicesMinted = devices.mintDevice(_actor(toSeed), signer, keccak256(abi.encode(signer)));
    }

    function transferDevice(uint256 deviceSeed, uint256 toSeed) external counted {
        if (devicesMinted == 0) return;
        uint256 d = deviceSeed % devicesMinted + 1;
        address from = devices.ownerOf(d);
        vm.prank(from);
        devices.transferFrom(from, _actor(toSeed), d);
        uint256 v = ghostVehicleOf[d];
        if (v != 0) {
            delete ghostDeviceOf[v];
            delete ghostVehicleOf[d];
        }
    }

    function pair(uint256 vehicleSeed, uint256 deviceSeed) external counted {
        uint256 v = _liveVehicle(vehicleSeed);
        if (v == 0 || devicesMinted == 0) return;
        uint256 d = deviceSeed % devicesMinted + 1;
        address owner = vehicles.ownerOf(v);
        if (devices.ownerOf(d) != owner || ghostDeviceOf[v] != 0 || ghostVehicleOf[d] != 0) return;
        uint256 key = deviceKeys[d - 1];
        uint256 nonce = freeNonce(devices, vm.addr(key));
        bytes32 structHash = keccak256(abi.encode(PAIR_TYPEHASH, v, d, nonce, block.timestamp));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", devices.DOMAIN_SEPARATOR(), structHash));
        vm.prank(owner);
        devices.pair(v, d, nonce, block.timestamp, signDigest(key, digest));
        ghostDeviceOf[v] = d;
        ghostVehicleOf[d] = v;
        ++pairings;
    }

    function unpair(uint256 vehicleSeed) external counted {
        uint256 v = _liveVehicle(vehicleSeed);
        if (v == 0 || ghostDeviceOf[v] == 0) return;
        vm.prank(vehicles.ownerOf(v));
        devices.unpair(v);
        delete ghostVehicleOf[ghostDeviceOf[v]];
        delete ghostDeviceOf[v];
    }

    // ------------------------------------------------------------------ expectations

    /// @notice What `permissionsOf(vehicleId, account)` must be, from the ghost state alone.
    function expectedPermissions(uint256 vehicleId, address account) external view returns (uint256 bits) {
        if (!ghostLive[vehicleId]) return 0;
        if (account == vehicles.ownerOf(vehicleId)) return Permissions.ALL;
        (bits,) = _liveKeyBits(vehicleId, account);
        GhostUser memory u = ghostUser[vehicleId];
        if (u.user == account && u.generation == ghostGeneration[vehicleId] && block.timestamp < u.expires) {
            bits |= Permissions.USER;
        }
    }

    /// @notice Whether `account` was given anything (key or user) in the vehicle's current generation.
    function heldThisGeneration(uint256 vehicleId, address account) external view returns (bool) {
        uint64 gen = ghostGeneration[vehicleId];
        GhostUser memory u = ghostUser[vehicleId];
        return ghostKey[vehicleId][account].generation == gen || (u.user == account && u.generation == gen);
    }

    function actorCount() external pure returns (uint256) {
        return ACTORS;
    }

    function vinCount() external pure returns (uint256) {
        return VINS;
    }
}

/// @notice The identity invariants, checked after every call of every random sequence.
contract IdentityInvariantTest is Test {
    VehicleId internal vehicles;
    AftermarketDevice internal devices;
    IdentityHandler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        address governor = makeAddr("governor");
        address minter = makeAddr("minter");
        address manufacturer = makeAddr("manufacturer");
        vehicles = new VehicleId(governor);
        devices = new AftermarketDevice(address(vehicles), governor);
        vm.startPrank(governor);
        vehicles.grantRole(vehicles.MINTER_ROLE(), minter);
        uint256 c = vehicles.addConnection("Tesla", makeAddr("oracle"));
        devices.setManufacturer(manufacturer, true);
        vm.stopPrank();
        handler = new IdentityHandler(vehicles, devices, minter, manufacturer, c);

        bytes4[] memory selectors = new bytes4[](13);
        selectors[0] = IdentityHandler.mint.selector;
        selectors[1] = IdentityHandler.burn.selector;
        selectors[2] = IdentityHandler.transfer.selector;
        selectors[3] = IdentityHandler.grant.selector;
        selectors[4] = IdentityHandler.managerGrant.selector;
        selectors[5] = IdentityHandler.revoke.selector;
        selectors[6] = IdentityHandler.setUser.selector;
        selectors[7] = IdentityHandler.warp.selector;
        selectors[8] = IdentityHandler.mintDevice.selector;
        selectors[9] = IdentityHandler.transferDevice.selector;
        selectors[10] = IdentityHandler.pair.selector;
        selectors[11] = IdentityHandler.unpair.selector;
        selectors[12] = IdentityHandler.mint.selector; // mints twice as likely: vehicles to act on
        targetContract(address(handler));
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// @notice After any sequence of transfers, no grantee or user of an earlier generation holds any bit.
    function invariant_noEarlierGranteeOrUserHoldsAnyBit() public view {
        uint256 minted = handler.vehiclesMinted();
        for (uint256 v = 1; v <= minted; ++v) {
            address owner = handler.ghostLive(v) ? vehicles.ownerOf(v) : address(0);
            for (uint256 i; i < handler.actorCount(); ++i) {
                address a = handler.actors(i);
                if (a == owner || handler.heldThisGeneration(v, a)) continue;
                assertEq(vehicles.permissionsOf(v, a), 0, "an earlier grantee or user holds a bit");
            }
        }
    }

    /// @notice Every account holds exactly what the ghost state says: live keys and users, nothing else.
    function invariant_permissionsMatchGhost() public view {
        uint256 minted = handler.vehiclesMinted();
        for (uint256 v = 1; v <= minted; ++v) {
            for (uint256 i; i < handler.actorCount(); ++i) {
                address a = handler.actors(i);
                assertEq(vehicles.permissionsOf(v, a), handler.expectedPermissions(v, a), "permissions drifted");
            }
        }
    }

    /// @notice The owner of every live vehicle holds every bit.
    function invariant_ownerHoldsEveryBit() public view {
        uint256 minted = handler.vehiclesMinted();
        for (uint256 v = 1; v <= minted; ++v) {
            if (!handler.ghostLive(v)) continue;
            assertEq(vehicles.permissionsOf(v, vehicles.ownerOf(v)), Permissions.ALL, "owner lacks a bit");
        }
    }

    /// @notice Generations move exactly once per mint, transfer and burn.
    function invariant_generationCountsUpdates() public view {
        uint256 minted = handler.vehiclesMinted();
        for (uint256 v = 1; v <= minted; ++v) {
            assertEq(vehicles.generation(v), handler.ghostGeneration(v), "generation drifted");
        }
    }

    /// @notice `vehicleOfVin` is a bijection between the VINs in use and the live vehicles.
    function invariant_vehicleOfVinIsBijectionWithLiveVehicles() public view {
        uint256 mapped;
        for (uint256 i; i < handler.vinCount(); ++i) {
            bytes32 vin = handler.vins(i);
            uint256 v = vehicles.vehicleOfVin(vin);
            if (v == 0) continue;
            ++mapped;
            assertTrue(handler.ghostLive(v), "a VIN maps to a dead vehicle");
            assertEq(vehicles.vinOf(v), vin, "vinOf disagrees with vehicleOfVin");
        }
        uint256 live;
        uint256 minted = handler.vehiclesMinted();
        for (uint256 v = 1; v <= minted; ++v) {
            bool isLive = handler.ghostLive(v);
            if (isLive) ++live;
            assertEq(vehicles.vehicleOfVin(vehicles.vinOf(v)) == v, isLive, "live vehicle without its VIN");
        }
        assertEq(mapped, live, "VINs in use != live vehicles");
    }

    /// @notice Pairings are mutual, match the ghost, and join NFTs of one owner.
    function invariant_pairingsAreMutual() public view {
        uint256 minted = handler.vehiclesMinted();
        for (uint256 v = 1; v <= minted; ++v) {
            uint256 d = devices.deviceOf(v);
            assertEq(d, handler.ghostDeviceOf(v), "deviceOf drifted");
            if (d == 0) continue;
            assertEq(devices.vehicleOfDevice(d), v, "pairing not mutual");
            assertEq(devices.ownerOf(d), vehicles.ownerOf(v), "paired across owners");
        }
        uint256 deviceCount = handler.devicesMinted();
        for (uint256 d = 1; d <= deviceCount; ++d) {
            uint256 v = devices.vehicleOfDevice(d);
            assertEq(v, handler.ghostVehicleOf(d), "vehicleOfDevice drifted");
            if (v != 0) assertEq(devices.deviceOf(v), d, "pairing not mutual");
        }
    }

    /// @notice No expectation checked inside a handler action (right after a transfer, right after
    ///         a manager's grant) was ever broken.
    function invariant_noViolationInsideActions() public view {
        assertEq(handler.violations(), 0, handler.lastViolation());
    }
}
