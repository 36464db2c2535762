/** The federation's close codes live with the protocol (the browser client needs them too). */
export { CLOSE, FINAL_CLOSES } from '../protocol/close_codes.js';
