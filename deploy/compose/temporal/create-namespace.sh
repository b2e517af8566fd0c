#!/bin/sh
# Register the `default` namespace and the approval search attributes once Temporal answers (temporalio/admin-tools).
set -eu
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do sleep 2; done
temporal operator namespace describe -n default --address "$TEMPORAL_ADDRESS" ||
    temporal operator namespace create -n default --retention 30d --address "$TEMPORAL_ADDRESS"
# What approvers filter on in the Web UI (contracts/approval_search.py); `create` fails once they exist, so look first.
for attribute in LobstackApprovalState=Keyword LobstackApprovalKind=Keyword LobstackAccount=Keyword \
    LobstackAgentId=Keyword LobstackApprovalDeadline=Datetime; do
    name=${attribute%=*}
    temporal operator search-attribute list -n default --address "$TEMPORAL_ADDRESS" | grep -qw "$name" ||
        temporal operator search-attribute create -n default --name "$name" --type "${attribute#*=}" \
            --address "$TEMPORAL_ADDRESS"
done
