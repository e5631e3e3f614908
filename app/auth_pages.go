package app

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/views"
)

func (s *Server) homePage(c *fiber.Ctx) error {
	return render(c, http.StatusOK, views.Home(s.page(c, "Welcome")))
}

func (s *Server) loginPage(c *fiber.Ctx) error {
	if currentUser(c) != nil {
		return c.Redirect(safeNext(c.Query("next")), http.StatusSeeOther)
	}
	return render(c, http.StatusOK, views.Login(s.page(c, "Sign in"), s.withSSO(views.LoginForm{Next: safeNext(c.Query("next"))})))
}

func (s *Server) loginSubmit(c *fiber.Ctx) error {
	in := account.Login{Email: c.FormValue("email"), Password: c.FormValue("password")}
	next := c.FormValue("next")
	u, err := s.accounts.Authenticate(c.UserContext(), in, s.clientKey(c))
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			return render(c, statusOf(err), views.Login(s.page(c, "Sign in"), s.withSSO(views.LoginForm{Email: in.Email, Next: next, Err: fe})))
		})
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return c.Redirect(safeNext(next), http.StatusSeeOther)
}

func (s *Server) signupPage(c *fiber.Ctx) error {
	if currentUser(c) != nil {
		return c.Redirect("/", http.StatusSeeOther)
	}
	f, err := s.signupForm(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Signup(s.page(c, "Create an account"), f))
}

// signupForm is the empty sign-up form: it asks for a setup code while the
// site has no admin, and is refused when sign-up is closed and there is no
// setup code to give.
func (s *Server) signupForm(c *fiber.Ctx) (views.SignupForm, error) {
	needsAdmin, err := s.accounts.NeedsAdmin(c.UserContext())
	if err != nil {
		return views.SignupForm{}, err
	}
	if !s.cfg.SignupOpen && !needsAdmin {
		return views.SignupForm{}, errSignupClosed
	}
	return views.SignupForm{AskSetupCode: needsAdmin, Closed: !s.cfg.SignupOpen}, nil
}

func (s *Server) signupSubmit(c *fiber.Ctx) error {
	in := account.SignUp{Email: c.FormValue("email"), Password: c.FormValue("password"), Name: c.FormValue("name"),
		SetupCode: c.FormValue("setup_code")}
	f, err := s.signupForm(c)
	if err == nil {
		err = s.signupAllowed(in)
	}
	if err != nil {
		return err
	}
	u, err := s.accounts.Register(c.UserContext(), in, s.clientKey(c))
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			f.Email, f.Name, f.Err = in.Email, in.Name, fe
			return render(c, statusOf(err), views.Signup(s.page(c, "Create an account"), f))
		})
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return c.Redirect("/", http.StatusSeeOther)
}

func (s *Server) logoutSubmit(c *fiber.Ctx) error {
	if err := s.endSession(c); err != nil {
		return err
	}
	return c.Redirect("/", http.StatusSeeOther)
}

// rerender shows a form again with the refusal beside it (POST → same page
// with the error). Errors that are not refusals go to the error handler.
func (s *Server) rerender(c *fiber.Ctx, err error, show func(*views.FormError) error) error {
	e, ok := problem.As(err)
	if !ok || e.Status >= 500 {
		return err
	}
	for k, v := range e.Headers {
		c.Set(k, v)
	}
	return show(&views.FormError{Field: e.Field, Message: e.Message})
}

func statusOf(err error) int {
	if e, ok := problem.As(err); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}
