#!/bin/sh
# Register the `default` namespace once Temporal answers (temporalio/admin-tools).
set -eu
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do sleep 2; done
temporal operator namespace describe -n default --address "$TEMPORAL_ADDRESS" ||
    temporal operator namespace create -n default --retention 30d --address "$TEMPORAL_ADDRESS"
