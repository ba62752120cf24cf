# Run by run-config-cases.sh with bash in a temporary copy of this case,
# before `reconcile validate`: writes environments/big.yaml, a valid
# environment body padded with comment lines to 4 MiB + 1 byte (the limit
# is 4 MiB), so that the 4 MiB file does not have to be committed.
mkdir -p environments
{ printf 'target: { driver: local }\n'; yes '# padding padding padding padding padding padding padding padding'; } 2>/dev/null |
	head -c 4194305 > environments/big.yaml
test "$(wc -c < environments/big.yaml)" -eq 4194305
