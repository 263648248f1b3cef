export { runbookExecution, voteUpdate, cancelUpdate, statusQuery } from './runbook-execution.ts';
