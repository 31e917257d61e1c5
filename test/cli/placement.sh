#!/bin/bash
# Placement through the real openstack CLI (osc-placement): the command list of issue 4 and
# more, against a fresh all-in-one. Prints ALL OK.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
run openstack resource provider create host1
run openstack resource provider list
RP=$(openstack resource provider list --name host1 -f value -c uuid)
run openstack resource provider inventory set $RP --resource VCPU=8 --resource MEMORY_MB=16384 --resource DISK_GB=200 --resource VCPU:allocation_ratio=16
run openstack resource class create CUSTOM_GPU
run openstack resource class show CUSTOM_GPU
run openstack trait create CUSTOM_FAST
run openstack resource provider trait set --trait CUSTOM_FAST $RP
run openstack allocation candidate list --resource VCPU=2 --resource MEMORY_MB=1024 --required CUSTOM_FAST
PROJ=$(openstack project show admin -f value -c id); USR=$(openstack user show admin -f value -c id)
C=$(python3 -c 'import uuid; print(uuid.uuid4())')
run openstack resource provider allocation set --allocation rp=$RP,VCPU=2 --allocation rp=$RP,MEMORY_MB=1024 --project-id $PROJ --user-id $USR $C
run openstack resource provider usage show $RP
run openstack resource usage show $PROJ
AGG=$(python3 -c 'import uuid; print(uuid.uuid4())')
G=$(openstack resource provider show $RP -f value -c generation)
run openstack resource provider aggregate set --aggregate $AGG $RP --generation $G
# Beyond the issue's list, at the newest microversion the client knows:
export OS_PLACEMENT_API_VERSION=1.39
run openstack resource provider create --parent-provider $RP numa0
N0=$(openstack resource provider list --name numa0 -f value -c uuid)
run openstack resource provider list --in-tree $RP
run openstack resource provider inventory set $N0 --resource PCPU=4
run openstack resource provider inventory class set $N0 PCPU --total 6 --reserved 1
run openstack resource provider inventory show $N0 PCPU
run openstack resource provider list --resource VCPU=1 --required CUSTOM_FAST
run openstack allocation candidate list --resource VCPU=1 --group 1 --resource PCPU=1 --group-policy none --member-of $AGG
run openstack resource usage show $PROJ
run openstack trait list --associated
run openstack resource provider set --name host-one $RP
run openstack resource provider show $RP --allocations
run openstack resource provider allocation unset $C --provider $RP --resource-class MEMORY_MB
run openstack resource provider allocation show $C
run openstack resource provider allocation delete $C
run openstack resource provider inventory delete $N0 --resource-class PCPU
run openstack resource provider delete $N0
run openstack resource class delete CUSTOM_GPU
run openstack resource provider trait delete $RP
run openstack trait delete CUSTOM_FAST
run openstack resource provider inventory delete $RP
run openstack resource provider delete $RP
echo ALL OK
