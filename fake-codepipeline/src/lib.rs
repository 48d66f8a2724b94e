//! The fake CodePipeline (see issue 2).
