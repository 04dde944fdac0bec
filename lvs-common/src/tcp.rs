//! Connection states and their idle timeouts, as IPVS keeps them.
//!
//! A Direct-Routing director sees only the client → server direction, so it
//! follows TCP with IPVS's "input only" transition table
//! (`net/netfilter/ipvs/ip_vs_proto_tcp.c`, `tcp_states[]`, INPUT-ONLY rows).
//! The order of states is IPVS's, so `lvsadm -lnc` prints the same names.

pub const NONE: u32 = 0;
pub const ESTABLISHED: u32 = 1;
pub const SYN_SENT: u32 = 2;
pub const SYN_RECV: u32 = 3;
pub const FIN_WAIT: u32 = 4;
pub const TIME_WAIT: u32 = 5;
pub const CLOSE: u32 = 6;
pub const CLOSE_WAIT: u32 = 7;
pub const LAST_ACK: u32 = 8;
pub const LISTEN: u32 = 9;
pub const SYNACK: u32 = 10;
/// Not a TCP state: the one state of a UDP flow.
pub const STATE_UDP: u32 = 11;
/// Entries of `Settings::timeouts_s`.
pub const NUM_STATES: usize = 12;

/// Names as ipvsadm prints them (`ip_vs_proto_tcp.c` `tcp_state_name_table`).
pub const STATE_NAMES: [&str; NUM_STATES] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
    "UDP",
];

/// IPVS default idle timeouts, seconds (`tcp_timeouts[]`, `udp_timeouts[]`).
/// `ipvsadm --set tcp tcpfin udp` changes ESTABLISHED, FIN_WAIT and UDP.
pub const DEFAULT_TIMEOUTS_S: [u32; NUM_STATES] = [
    2,       // NONE
    15 * 60, // ESTABLISHED
    2 * 60,  // SYN_SENT
    60,      // SYN_RECV
    2 * 60,  // FIN_WAIT
    2 * 60,  // TIME_WAIT
    10,      // CLOSE
    60,      // CLOSE_WAIT
    30,      // LAST_ACK
    2 * 60,  // LISTEN
    2 * 60,  // SYNACK
    5 * 60,  // UDP
];

/// Which row of the transition table a segment uses; IPVS's priority order:
/// RST, then SYN, then FIN, then ACK.
pub const EVENT_SYN: usize = 0;
pub const EVENT_FIN: usize = 1;
pub const EVENT_ACK: usize = 2;
pub const EVENT_RST: usize = 3;

const S_ES: u8 = ESTABLISHED as u8;
const S_SS: u8 = SYN_SENT as u8;
const S_SR: u8 = SYN_RECV as u8;
const S_FW: u8 = FIN_WAIT as u8;
const S_TW: u8 = TIME_WAIT as u8;
const S_CL: u8 = CLOSE as u8;
const S_CW: u8 = CLOSE_WAIT as u8;
const S_LA: u8 = LAST_ACK as u8;
const S_LI: u8 = LISTEN as u8;

/// IPVS INPUT-ONLY rows: `TRANSITIONS[event][current] = next`.
pub const TRANSITIONS: [[u8; 11]; 4] = [
    //  sNO   sES   sSS   sSR   sFW   sTW   sCL   sCW   sLA   sLI   sSA
    [
        S_SR, S_ES, S_ES, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR, S_SR,
    ], // syn
    [
        S_CL, S_FW, S_SS, S_TW, S_FW, S_TW, S_CL, S_CW, S_LA, S_LI, S_TW,
    ], // fin
    [
        S_CL, S_ES, S_SS, S_ES, S_FW, S_TW, S_CL, S_CW, S_CL, S_LI, S_ES,
    ], // ack
    [
        S_CL, S_CL, S_CL, S_SR, S_CL, S_CL, S_CL, S_CL, S_LA, S_LI, S_CL,
    ], // rst
];

/// TCP flag bits in byte 13 of the header.
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_SYN: u8 = 0x02;
pub const FLAG_RST: u8 = 0x04;
pub const FLAG_ACK: u8 = 0x10;

/// The next state after a client segment with `flags` in state `current`.
/// A segment with none of RST/SYN/FIN/ACK moves to CLOSE, as in IPVS.
#[inline(always)]
pub fn next_state(current: u32, flags: u8) -> u32 {
    let event = if flags & FLAG_RST != 0 {
        EVENT_RST
    } else if flags & FLAG_SYN != 0 {
        EVENT_SYN
    } else if flags & FLAG_FIN != 0 {
        EVENT_FIN
    } else if flags & FLAG_ACK != 0 {
        EVENT_ACK
    } else {
        return CLOSE;
    };
    let row = &TRANSITIONS[event];
    // `current` comes from a map the agent can write: bound it.
    if (current as usize) < row.len() {
        row[current as usize] as u32
    } else {
        CLOSE
    }
}

/// IPVS counts a connection as active only while ESTABLISHED.
#[inline(always)]
pub fn is_active(state: u32) -> bool {
    state == ESTABLISHED
}
