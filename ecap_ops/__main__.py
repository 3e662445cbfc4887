from ecap_ops.cli import main

main(prog_name="ecap-ops")
