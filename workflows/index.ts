export { runbookExecution, voteUpdate, cancelUpdate, statusQuery } from './runbook-execution.ts';
export { fanOutStep } from './fan-out.ts';
