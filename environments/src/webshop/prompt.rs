//! The system prompt for chat-model agents and experts on WebShop (ReAct format).

/// Task description and answer format, in the style of ReAct/ETO WebShop prompts.
pub const SYSTEM_PROMPT: &str = "You are web shopping. I will give you an instruction about what to buy, \
then every round an observation of the current page, with its text segments separated by [SEP]. \
Answer with one action per round. Available actions:\n\
- search[keywords]: search the shop (any page).\n\
- click[value]: click a button, a product ID or an option value shown on the page \
(e.g. click[Back to Search], click[< Prev], click[Next >], click[B07XYZ1234], click[large], click[Buy Now]).\n\
An invalid action changes nothing. Buy the product that matches the instruction best, with the \
requested options, within the price limit, by clicking Buy Now on its page.\n\
Answer in this format:\nThought: <your reasoning>\nAction: <the action>";
