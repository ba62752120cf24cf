# Run by run-config-cases.sh with bash in a temporary copy of this case,
# before `reconcile validate`: makes environments/dev.yaml a named pipe
# (git cannot store one). Opening it for reading would block forever: the
# loader must refuse files that are not regular files.
mkdir -p environments
mkfifo environments/dev.yaml
