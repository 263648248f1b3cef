export { runbookExecution, voteUpdate, statusQuery } from './runbook-execution.ts';
