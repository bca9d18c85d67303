#!/bin/bash
# The stress script of mirage/mirage-tcpip issue #499 (docs/architecture.md, "Why"), kept
# verbatim but for three lines: the relay is local (IP may name a port, e.g.
# IP=127.0.0.1:9000), `./bob.com` is $BOB (default: this project's `bob`),
# and MAX comes from the environment (default 256, as in the issue).
# Needs GNU parallel, shuf, base64 and sha256sum, and a file.txt in the
# current directory. Our senders' PBKDF2 count is high by default and every
# receiver pays it once per advertised sender, so for many pairs export
# BOB_PBKDF2_COUNT=16 (bob's own count); BOB_SECURE_PORT sets --secure-port.
MAX=${MAX:-256}
LEN=16
IP=${IP:-"127.0.0.1"} # IP of the relay
BOB=${BOB:-"node $(cd "$(dirname "$0")/../.." && pwd)/dist/relay/cli.js"}
PASSWORDS=()
for i in $(seq $MAX); do
P=$(echo $RANDOM | base64 | head -c $LEN);
while [[ " ${PASSWORDS[*]} " =~ " ${P} " ]]; do
P=$(echo $RANDOM | base64 | head -c $LEN);
done;
PASSWORDS+=( $P )
done
PASSWORDS=($(printf "%s\n" "${PASSWORDS[@]}" | sort -u))
IFS=$'\n'
COMMANDS=()
FILES=()
for i in ${!PASSWORDS[@]}; do
SEND="$BOB send -r $IP file.txt -p ${PASSWORDS[$i]} -vvv 2> output.send.$i > /dev/null";
RECV="$BOB recv -r $IP ${PASSWORDS[$i]} -vvv -o file.txt.$i 2> output.recv.$i > /dev/null";
COMMANDS+=( $SEND )
COMMANDS+=( $RECV )
FILES+=( "file.txt.$i" )
done
COMMANDS=( $(shuf -e "${COMMANDS[@]}") )
parallel -j $MAX ::: ${COMMANDS[@]}
HASHES=($(sha256sum ${FILES[@]}))
rm ${FILES[@]}
for hash in ${HASHES[@]}; do
echo $hash
done
