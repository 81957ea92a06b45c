//! The problems a plan foresees: what keeps NATS from matching the declarations even
//! after applying, one [`Problem`] each. Here rather than in `plan` so that deciding
//! knows nothing of how a run reports.

use crate::plan::{EntryAction, Plan};
use crate::problem::Problem;

/// Problems that keep NATS from matching the manifests even after applying.
pub fn plan_problems(plan: &Plan) -> Vec<Problem> {
    let mut problems = bucket_problems(plan);
    for bucket in &plan.buckets {
        for entry in &bucket.entries {
            if let EntryAction::Conflict { .. } = &entry.action
                && let Some(why) = entry.action.explain()
            {
                problems.push(Problem::key(&bucket.bucket, &entry.key, why));
            }
        }
    }
    problems
}

/// Bucket changes that cannot be made: blocked immutable fields, missing buckets.
pub fn bucket_problems(plan: &Plan) -> Vec<Problem> {
    plan.buckets
        .iter()
        .filter_map(|bucket| {
            let why = bucket.action.explain()?;
            Some(Problem::bucket(&bucket.bucket, why))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{ObjectRef, Origin};
    use crate::plan::{BucketAction, BucketPlan, BucketRefusal, FieldChange};

    fn bucket(name: &str, action: BucketAction) -> BucketPlan {
        BucketPlan {
            bucket: name.into(),
            owner: ObjectRef::resource("default", name),
            origin: Origin {
                source: "m.yaml".into(),
                line: 1,
            },
            action,
            entries: Vec::new(),
        }
    }

    #[test]
    fn each_bucket_that_cannot_match_is_one_problem_and_the_others_none() {
        let storage = FieldChange {
            field: "storage",
            from: "file".into(),
            to: "memory".into(),
            immutable: true,
        };
        let plan = Plan {
            buckets: vec![
                bucket(
                    "blocked",
                    BucketAction::Blocked {
                        changes: vec![storage],
                    },
                ),
                bucket("missing", BucketAction::Missing),
                bucket(
                    "refused",
                    BucketAction::Refused {
                        refusal: BucketRefusal::NotAdopted,
                    },
                ),
                bucket("fine", BucketAction::Unchanged),
                bucket("observed", BucketAction::Observe),
            ],
        };
        let buckets: Vec<_> = plan_problems(&plan)
            .into_iter()
            .map(|problem| problem.bucket.unwrap_or_default())
            .collect();
        assert_eq!(buckets, ["blocked", "missing", "refused"]);
    }
}
