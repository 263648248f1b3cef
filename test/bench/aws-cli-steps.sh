#!/usr/bin/env bash
# The bench runbook's three steps as an operator's script would run them with the AWS CLI: assume
# the runner role, then for each step send-command to the instances and `wait command-executed` on
# each of them before the next step. Driven by aws-cli.ts, which sets the variables below.
set -euo pipefail
: "${AWS_CLI:?}" "${ENDPOINT:?}" "${ROLE_ARN:?}" "${INSTANCE_IDS:?}" "${TAG:?}"
aws() { "$AWS_CLI" --endpoint-url "$ENDPOINT" "$@"; }

read -r AK SK ST < <(aws sts assume-role --role-arn "$ROLE_ARN" --role-session-name cli-bench \
  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SESSION_TOKEN=$ST

read -r -a ids <<< "$INSTANCE_IDS"
for step in 1 2 3; do
  id=$(aws ssm send-command --document-name AWS-RunShellScript --instance-ids "${ids[@]}" \
    --parameters "{\"commands\":[\"echo step $step\"]}" --comment "$TAG step $step" \
    --query Command.CommandId --output text)
  for i in "${ids[@]}"; do
    aws ssm wait command-executed --command-id "$id" --instance-id "$i"
  done
done
